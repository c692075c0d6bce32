/* canonicalize.c -- dead code elimination and trivial identities.
 * Identities: copy, scale by 1 and reshape to the operand's own shape
 * become their operand, except where the identity is what writes an output
 * (its operand an input, a parameter or another output): so the copies
 * plan-memory gives such outputs (passes/plan_outputs.c) stay when a graph
 * printed after them is compiled again.  Then every op whose
 * results are unused (not an operand of a live op, not an output, not the
 * loss) and that has no side effect and is no guard is marked dead.
 * Requires: nothing.
 * Preserves: shapes, locations. */
#include "passes.h"

/* Returns the operand an identity op can be replaced by, or NULL. */
static DnValue *identity_of(const DnOp *op)
{
    if (op->kind == DN_OP_COPY) return op->in[0];
    if (op->kind == DN_OP_SCALE && dn_op_float(op, "alpha") == 1.0) return op->in[0];
    if (op->kind == DN_OP_RESHAPE && dn_shape_eq(&op->in[0]->shape, &op->out[0]->shape)) return op->in[0];
    return NULL;
}

/* Replacing identity result 'y' by its operand 'x' is safe unless 'y' is an
 * output or the loss and 'x' cannot become that output: an input or a
 * parameter has no op to write the output's buffer, and a value already
 * pinned to one output buffer cannot fill a second one. */
static bool can_fold(const DnGraph *g, const DnValue *y, const DnValue *x)
{
    return !dn_graph_is_output(g, y) || (x->kind == DN_VAL_OP && !dn_graph_is_output(g, x));
}

static void fold_identities(DnGraph *g)
{
    for (int i = 0; i < g->ops.len; i++) {
        DnOp *op = g->ops.data[i];
        DnValue *same = op->dead ? NULL : identity_of(op);
        if (!same || !can_fold(g, op->out[0], same)) continue;
        dn_graph_replace_uses(g, op->out[0], same);
        op->dead = true;
    }
}

static bool is_used(const DnGraph *g, const int *uses, const DnOp *op)
{
    for (int r = 0; r < op->nout; r++) {
        if (uses[op->out[r]->id] > 0 || op->out[r] == g->loss) return true;
        for (int k = 0; k < g->outputs.len; k++)
            if (g->outputs.data[k] == op->out[r]) return true;
    }
    return false;
}

/* Marks dead every op with no use, no side effect and no guard, back to
 * front, so a chain of dead ops dies in one sweep. */
void dn_dce(DnGraph *g, DnArena *scratch)
{
    int *uses = dn_fill_uses(g, scratch);
    for (int i = g->ops.len - 1; i >= 0; i--) {
        DnOp *op = g->ops.data[i];
        if (op->dead || (dn_op_info[op->kind].flags & (DN_OPF_SIDE_EFFECT | DN_OPF_GUARD)) || is_used(g, uses, op))
            continue;
        op->dead = true;
        for (int k = 0; k < op->nin; k++)
            if (op->in[k]) uses[op->in[k]->id]--;
    }
}

DnStatus dn_pass_canonicalize(DnPassCtx *pc, DnGraph *g)
{
    fold_identities(g);
    dn_dce(g, &pc->scratch);
    return DN_OK;
}
