/* kernel_layernorm.c -- CPU kernels of layernorm, layernorm_bwd and
 * layernorm_bwd_params (ops.def).
 *
 * The input is viewed as [rows, D]: the leading axes (N among them) are
 * rows, the last 'dims' axes one row of D elements.  layernorm and
 * layernorm_bwd run in parallel over the rows, each row in three passes
 * (mean, biased variance about it, the result; the backward: the row sums
 * of g and g * xh, then dx), with float sums in element order.
 * layernorm_bwd_params runs in parallel over the D columns, each summing
 * its column over the rows in row order, so every result is the same for
 * any split of the work.
 */
#include "llvm_internal.h"

typedef DnRows Rows;

static Rows rows_of(const DnOp *op) { return dn_shape_rows(&op->in[0]->shape, (int)dn_op_int(op, "dims")); }

static LLVMValueRef fsub(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(k->L->b, a, b, ""); }

/* sum over j < D of f(j), in order; 'body' emits the term for index j. */
typedef LLVMValueRef (*TermFn)(DnKernel *k, const void *ctx, LLVMValueRef j);
static LLVMValueRef row_sum(DnKernel *k, int64_t D, TermFn term, const void *ctx)
{
    LLVMValueRef acc = dn_var(k, k->L->f32, dn_f32(k, 0), "acc");
    DnLoop l = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, D), "j");
    dn_set(k, acc, dn_fadd(k, dn_get(k, acc, k->L->f32), term(k, ctx, l.i)));
    dn_loop_end(k, &l);
    return dn_get(k, acc, k->L->f32);
}

typedef struct Row {
    LLVMValueRef base, mean, rstd; /* the row's first element; its statistics */
    LLVMValueRef w;                /* weight, or NULL */
} Row;

static LLVMValueRef term_x(DnKernel *k, const void *ctx, LLVMValueRef j)
{
    const Row *r = ctx;
    return dn_load_f32(k, k->in[0], dn_add(k, r->base, j));
}

static LLVMValueRef term_sq(DnKernel *k, const void *ctx, LLVMValueRef j)
{
    const Row *r = ctx;
    LLVMValueRef d = fsub(k, dn_load_f32(k, k->in[0], dn_add(k, r->base, j)), r->mean);
    return dn_fmul(k, d, d);
}

/* xh = (x - mean) * rstd at column j of the row. */
static LLVMValueRef xhat(DnKernel *k, const Row *r, LLVMValueRef j)
{
    return dn_fmul(k, fsub(k, dn_load_f32(k, k->in[0], dn_add(k, r->base, j)), r->mean), r->rstd);
}

/* g = dy * weight (or dy) at column j of the row (dy is operand 2). */
static LLVMValueRef grad_in(DnKernel *k, const Row *r, LLVMValueRef j)
{
    LLVMValueRef g = dn_load_f32(k, k->in[2], dn_add(k, r->base, j));
    return r->w ? dn_fmul(k, g, dn_load_f32(k, r->w, j)) : g;
}

static LLVMValueRef term_g(DnKernel *k, const void *ctx, LLVMValueRef j) { return grad_in(k, ctx, j); }

static LLVMValueRef term_gxh(DnKernel *k, const void *ctx, LLVMValueRef j)
{
    return dn_fmul(k, grad_in(k, ctx, j), xhat(k, ctx, j));
}

static void set_rows_parallel(DnKernel *k, Rows g)
{
    k->par_n = g.has_n ? g.lead : 0;
    k->par_b = g.has_n ? 0 : g.lead;
}

void dn_kernel_layernorm(DnKernel *k)
{
    Rows g = rows_of(k->op);
    bool affine = k->op->nin == 3;
    set_rows_parallel(k, g);
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef inv_d = dn_f32(k, 1.0 / (double)g.D), eps = dn_f32(k, dn_op_float(k->op, "eps"));
    DnLoop l = dn_loop_begin(k, k->begin, k->end, "row");
    Row r = {.base = dn_mul(k, l.i, dn_i64(k, g.D))};
    r.mean = dn_fmul(k, row_sum(k, g.D, term_x, &r), inv_d);
    LLVMValueRef var = dn_fmul(k, row_sum(k, g.D, term_sq, &r), inv_d);
    r.rstd = LLVMBuildFDiv(b, dn_f32(k, 1), dn_call_f32(k, "llvm.sqrt.f32", dn_fadd(k, var, eps)), "rstd");
    LLVMValueRef st = dn_mul(k, l.i, dn_i64(k, 2)), y = k->out[0];
    dn_store_f32(k, k->out[1], st, r.mean);
    dn_store_f32(k, k->out[1], dn_add(k, st, dn_i64(k, 1)), r.rstd);
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, g.D), "j");
    LLVMValueRef v = xhat(k, &r, lj.i);
    if (affine) v = dn_fadd(k, dn_fmul(k, v, dn_load_f32(k, k->in[1], lj.i)), dn_load_f32(k, k->in[2], lj.i));
    dn_store_f32(k, y, dn_add(k, r.base, lj.i), v);
    dn_loop_end(k, &lj);
    dn_loop_end(k, &l);
}

/* The statistics of row 'row' from operand 1. */
static void load_stats(DnKernel *k, Row *r, LLVMValueRef row)
{
    LLVMValueRef st = dn_mul(k, row, dn_i64(k, 2));
    r->mean = dn_load_f32(k, k->in[1], st);
    r->rstd = dn_load_f32(k, k->in[1], dn_add(k, st, dn_i64(k, 1)));
}

void dn_kernel_layernorm_bwd(DnKernel *k)
{
    Rows g = rows_of(k->op);
    set_rows_parallel(k, g);
    LLVMValueRef inv_d = dn_f32(k, 1.0 / (double)g.D);
    DnLoop l = dn_loop_begin(k, k->begin, k->end, "row");
    Row r = {.base = dn_mul(k, l.i, dn_i64(k, g.D)), .w = k->op->nin > 3 ? k->in[3] : NULL};
    load_stats(k, &r, l.i);
    LLVMValueRef mg = dn_fmul(k, row_sum(k, g.D, term_g, &r), inv_d);
    LLVMValueRef mgx = dn_fmul(k, row_sum(k, g.D, term_gxh, &r), inv_d);
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, g.D), "j");
    LLVMValueRef d = fsub(k, fsub(k, grad_in(k, &r, lj.i), mg), dn_fmul(k, xhat(k, &r, lj.i), mgx));
    dn_store_f32(k, k->out[0], dn_add(k, r.base, lj.i), dn_fmul(k, r.rstd, d));
    dn_loop_end(k, &lj);
    dn_loop_end(k, &l);
}

void dn_kernel_layernorm_bwd_params(DnKernel *k)
{
    Rows g = rows_of(k->op);
    k->par_n = 0, k->par_b = g.D;
    LLVMValueRef nrows = g.has_n ? dn_mul(k, k->n, dn_i64(k, g.lead)) : dn_i64(k, g.lead);
    DnLoop lj = dn_loop_begin(k, k->begin, k->end, "j");
    LLVMValueRef dw = dn_var(k, k->L->f32, dn_f32(k, 0), "dw"), db = dn_var(k, k->L->f32, dn_f32(k, 0), "db");
    DnLoop lr = dn_loop_begin(k, dn_i64(k, 0), nrows, "row");
    Row r = {.base = dn_mul(k, lr.i, dn_i64(k, g.D))};
    load_stats(k, &r, lr.i);
    LLVMValueRef dy = dn_load_f32(k, k->in[2], dn_add(k, r.base, lj.i));
    dn_set(k, dw, dn_fadd(k, dn_get(k, dw, k->L->f32), dn_fmul(k, dy, xhat(k, &r, lj.i))));
    dn_set(k, db, dn_fadd(k, dn_get(k, db, k->L->f32), dy));
    dn_loop_end(k, &lr);
    dn_store_f32(k, k->out[0], lj.i, dn_get(k, dw, k->L->f32));
    dn_store_f32(k, k->out[1], lj.i, dn_get(k, db, k->L->f32));
    dn_loop_end(k, &lj);
}
