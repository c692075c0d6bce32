/* concat_views.c -- a concat along axis 1 (right after N) whose operands
 * can be written straight into its result is marked views = 1; the memory
 * plan then makes each such operand a strided view of the result (its
 * bytes of every batch item, at the result's item stride), so the
 * producer writes the concatenated tensor and the concat moves nothing
 * for it.  An operand qualifies (dn_concat_view_operand) when its producer
 * writes result 0 at an item stride on every backend (DN_OPF_STRIDED_OUT:
 * conv2d and the pointwise add, sub, mul, div, scale, relu, tanh,
 * sigmoid), the concat is its only reader, it is listed once and it is no
 * graph output.  In a training graph the backward ops read the producers'
 * results too, so this is an inference-graph optimisation in practice.
 * Other operands are copied as before. */
#include "passes.h"

bool dn_concat_view_operand(const DnGraph *g, const int *uses, const DnOp *op, int k)
{
    const DnValue *y = op->out[0], *x = op->in[k];
    if (op->kind != DN_OP_CONCAT || dn_op_int(op, "axis") != 1 || y->shape.rank < 2 || y->shape.dim[0] != DN_DIM_N ||
        dn_shape_has_seq(&y->shape) || dn_graph_is_output(g, y))
        return false;
    if (x->kind != DN_VAL_OP || !(dn_op_info[x->def->kind].flags & DN_OPF_STRIDED_OUT) || x->def->out[0] != x ||
        uses[x->id] != 1 || dn_graph_is_output(g, x) || x->dtype != y->dtype)
        return false;
    for (int j = 0; j < op->nin; j++)
        if (j != k && op->in[j] == x) return false;
    return true;
}

static void set_views(DnOp *op)
{
    for (int a = 0; a < op->nattrs; a++)
        if (!strcmp(op->attrs[a].name, "views")) op->attrs[a].i = 1;
}

DnStatus dn_pass_concat_views(DnPassCtx *pc, DnGraph *g)
{
    int *uses = dn_fill_uses(g, &pc->scratch);
    for (int i = 0; i < g->ops.len; i++) {
        DnOp *op = g->ops.data[i];
        if (op->dead || op->kind != DN_OP_CONCAT) continue;
        for (int k = 0; k < op->nin; k++)
            if (dn_concat_view_operand(g, uses, op, k)) {
                set_views(op);
                break;
            }
    }
    return DN_OK;
}
