/* seq.c -- the run-time sequence axis T<=bound: which ops take it, and in
 * which form their kernels see it.
 *
 * A value with the sequence axis has the shape [N, T, ...]: T is axis 1,
 * right after the batch N, and its dim holds DN_DIM_SEQ(bound).  At run
 * time the caller gives t (1 <= t <= bound) with n, and the value holds
 * n * t * (the rest) contiguous elements; its buffer is sized for the bound.
 *
 * Every op that touches such a value has one of two forms:
 *   - DN_SEQ_ROWS: the op treats every (n, t) position alike, so its
 *     kernel is the batch-only kernel of the same op with N and T folded
 *     into one batch axis of n * t items (dn_op_seq_rows builds that op);
 *   - DN_SEQ_AWARE: the op's kernel reads t itself (the recurrent scans,
 *     sequence_mask, a matrix product that sums over T).
 * Any other op on a sequence value is refused where it is built, naming
 * the op, so no backend ever sees it.
 */
#include "ir.h"

bool dn_shape_has_seq(const DnShape *s)
{
    for (int i = 0; i < s->rank; i++)
        if (DN_DIM_IS_SEQ(s->dim[i])) return true;
    return false;
}

/* [N, T, ...] with no other sequence axis. */
static bool seq_prefix(const DnShape *s)
{
    if (s->rank < 2 || s->dim[0] != DN_DIM_N || !DN_DIM_IS_SEQ(s->dim[1])) return false;
    for (int i = 2; i < s->rank; i++)
        if (DN_DIM_IS_SEQ(s->dim[i])) return false;
    return true;
}

static bool plain(const DnShape *s) { return !dn_shape_has_n(s) && !dn_shape_has_seq(s); }

int64_t dn_graph_seq_bound(const DnGraph *g)
{
    for (int i = 0; i < g->inputs.len; i++) {
        const DnShape *s = &g->inputs.data[i]->shape;
        if (s->rank >= 2 && DN_DIM_IS_SEQ(s->dim[1])) return DN_SEQ_BOUND(s->dim[1]);
    }
    return 0;
}

bool dn_op_has_seq(const DnOp *op)
{
    for (int i = 0; i < op->nin; i++)
        if (op->in[i] && dn_shape_has_seq(&op->in[i]->shape)) return true;
    for (int i = 0; op->out && i < op->nout; i++) /* no results yet while the builder checks operands */
        if (op->out[i] && dn_shape_has_seq(&op->out[i]->shape)) return true;
    return false;
}

static int64_t shape_seq_bound(const DnShape *s)
{
    for (int i = 0; i < s->rank; i++)
        if (DN_DIM_IS_SEQ(s->dim[i])) return DN_SEQ_BOUND(s->dim[i]);
    return 0;
}

int64_t dn_op_seq_bound(const DnOp *op)
{
    for (int i = 0; i < op->nin + op->nout; i++) {
        const DnValue *v = i < op->nin ? op->in[i] : op->out ? op->out[i - op->nin] : NULL;
        int64_t b = v ? shape_seq_bound(&v->shape) : 0;
        if (b) return b;
    }
    return 0;
}

/* The kinds whose kernels treat every (n, t) position alike, given the
 * checks of rows_form. */
static bool rows_kind(DnOpKind k)
{
    if (dn_op_info[k].flags & DN_OPF_ELEMWISE) return true;
    switch (k) {
    case DN_OP_DENSE:
    case DN_OP_MATMUL:
    case DN_OP_SOFTMAX:
    case DN_OP_LOG_SOFTMAX:
    case DN_OP_SOFTMAX_BWD:
    case DN_OP_LOG_SOFTMAX_BWD:
    case DN_OP_CONCAT:
    case DN_OP_SLICE:
    case DN_OP_SLICE_BWD:
    case DN_OP_DROPOUT:
    case DN_OP_DROPOUT_BWD:
    case DN_OP_EMBEDDING:
    case DN_OP_EMBEDDING_BWD:
    case DN_OP_CROSS_ENTROPY:
    case DN_OP_CROSS_ENTROPY_BWD:
    case DN_OP_MSE:
    case DN_OP_MSE_BWD:
    case DN_OP_SUM_TO:
    case DN_OP_LAYERNORM:
    case DN_OP_LAYERNORM_BWD:
    case DN_OP_LAYERNORM_BWD_PARAMS:
    case DN_OP_CHECK_FINITE: return true;
    default: return false;
    }
}

static bool aware_kind(DnOpKind k)
{
    return k == DN_OP_RNN_SCAN || k == DN_OP_RNN_SCAN_BWD || k == DN_OP_SEQUENCE_MASK || k == DN_OP_MATMUL;
}

bool dn_op_kind_takes_seq(DnOpKind k) { return rows_kind(k) || aware_kind(k); }

/* The axis attribute an op of a rows kind has (softmax, log_softmax and
 * their backwards, concat, slice, slice_bwd), or NULL. */
static const DnAttr *axis_attr(const DnOp *op) { return rows_kind(op->kind) ? dn_op_attr(op, "axis") : NULL; }

static bool rows_form(const DnOp *op, const char **why)
{
    int rank = 0;
    for (int i = 0; i < op->nin + op->nout; i++) {
        const DnValue *v = i < op->nin ? op->in[i] : op->out[i - op->nin];
        if (!v || plain(&v->shape)) continue;
        if (!seq_prefix(&v->shape)) {
            *why = "every operand and result must either be [N, T, ...] or have neither N nor T";
            return false;
        }
        if (v->shape.rank > rank) rank = v->shape.rank;
    }
    const DnAttr *ax = axis_attr(op);
    if (ax && ax->i < 2) {
        *why = "it works along the batch or the sequence axis";
        return false;
    }
    if (dn_op_info[op->kind].flags & DN_OPF_ELEMWISE)
        for (int i = 0; i < op->nin; i++)
            if (plain(&op->in[i]->shape) && op->in[i]->shape.rank > rank - 2) {
                *why = "an operand without N and T broadcasts along the sequence axis";
                return false;
            }
    return true;
}

/* rnn_scan(_bwd): the sequence operand (xg, or dy) is [N, T, ...]; the
 * states and weights have no T. */
static bool aware_form(const DnOp *op, const char **why)
{
    switch (op->kind) {
    case DN_OP_RNN_SCAN:
    case DN_OP_RNN_SCAN_BWD:
        if (!seq_prefix(&op->in[0]->shape)) {
            *why = "its sequence must be [N, T, ...]";
            return false;
        }
        return true;
    case DN_OP_SEQUENCE_MASK:
        if (op->in[0]->shape.rank != 1 || !seq_prefix(&op->out[0]->shape)) {
            *why = "its lengths must be [N]";
            return false;
        }
        return true;
    case DN_OP_MATMUL: { /* a [N, T, M]ᵀ · b [N, T, P]: a sum over T for every batch item */
        const DnValue *a = op->in[0], *b = op->in[1];
        if (a->shape.rank == 3 && b->shape.rank == 3 && seq_prefix(&a->shape) && seq_prefix(&b->shape) &&
            dn_op_int(op, "trans_a") && !dn_op_int(op, "trans_b") && !dn_shape_has_seq(&op->out[0]->shape))
            return true;
        *why = "a matrix product over T is supported as [N, T, K] times a matrix without T, or as a^T b with both [N, "
               "T, ...]";
        return false;
    }
    default: return false;
    }
}

bool dn_op_seq_operands_ok(const DnOp *op, const char **why)
{
    *why = NULL;
    if (op->kind != DN_OP_MATMUL) return true;
    const DnShape *a = &op->in[0]->shape, *b = &op->in[1]->shape;
    if (!dn_shape_has_seq(a) && !dn_shape_has_seq(b)) return true;
    if (dn_shape_has_seq(a) && !dn_shape_has_seq(b) && !dn_op_int(op, "trans_a")) return true;
    if (a->rank == 3 && b->rank == 3 && seq_prefix(a) && seq_prefix(b) && dn_op_int(op, "trans_a") &&
        !dn_op_int(op, "trans_b"))
        return true;
    *why = "a matrix product over T is supported as [N, T, K] times a matrix without T, or as a^T b with both [N, "
           "T, ...]";
    return false;
}

DnSeqForm dn_op_seq_form(const DnOp *op, const char **why)
{
    *why = NULL;
    if (!dn_op_has_seq(op)) return DN_SEQ_NONE;
    if (op->kind == DN_OP_MATMUL) { /* rows when only 'a' and the result carry T */
        const char *w;
        if (!dn_shape_has_seq(&op->in[1]->shape) && !dn_op_int(op, "trans_a") && rows_form(op, &w)) return DN_SEQ_ROWS;
        return aware_form(op, why) ? DN_SEQ_AWARE : DN_SEQ_UNSUPPORTED;
    }
    if (aware_kind(op->kind)) return aware_form(op, why) ? DN_SEQ_AWARE : DN_SEQ_UNSUPPORTED;
    if (!rows_kind(op->kind)) {
        *why = "this op does not take the run-time sequence axis T yet";
        return DN_SEQ_UNSUPPORTED;
    }
    return rows_form(op, why) ? DN_SEQ_ROWS : DN_SEQ_UNSUPPORTED;
}

/* [N, T, ...] -> [N, ...] (N standing for n * t); other shapes unchanged. */
static DnShape fold(const DnShape *s)
{
    if (!seq_prefix(s)) return *s;
    DnShape r = {.rank = s->rank - 1};
    r.dim[0] = DN_DIM_N;
    for (int i = 2; i < s->rank; i++) r.dim[i - 1] = s->dim[i];
    return r;
}

static DnValue *fold_value(const DnValue *v, DnArena *a)
{
    if (!v) return NULL;
    DnValue *c = dn_arena_alloc(a, sizeof *c);
    *c = *v;
    c->shape = fold(&v->shape);
    return c;
}

DnOp *dn_op_seq_rows(const DnOp *op, DnArena *a)
{
    DnOp *c = dn_arena_alloc(a, sizeof *c);
    *c = *op;
    c->in = dn_arena_alloc(a, (size_t)(op->nin + 1) * sizeof *c->in);
    c->out = dn_arena_alloc(a, (size_t)(op->nout + 1) * sizeof *c->out);
    for (int i = 0; i < op->nin; i++) c->in[i] = fold_value(op->in[i], a);
    for (int i = 0; i < op->nout; i++) c->out[i] = fold_value(op->out[i], a);
    c->attrs = dn_arena_alloc(a, (size_t)(op->nattrs + 1) * sizeof *c->attrs);
    for (int i = 0; i < op->nattrs; i++) {
        DnAttr at = op->attrs[i];
        if (!strcmp(at.name, "axis") && axis_attr(op)) at.i--;
        if (!strcmp(at.name, "shape") && at.kind == DN_ATTR_INTS && at.nints >= 2 && at.ints[0] == DN_DIM_N &&
            DN_DIM_IS_SEQ(at.ints[1])) {
            int64_t *v = dn_arena_alloc(a, (size_t)at.nints * sizeof *v);
            v[0] = DN_DIM_N;
            for (int j = 2; j < at.nints; j++) v[j - 1] = at.ints[j];
            at.ints = v, at.nints--;
        }
        c->attrs[i] = at;
    }
    return c;
}
