/* fuse_conv.c -- conv2d/dense followed by relu becomes one op with a relu
 * epilogue (act = "relu"), so the activation is applied while the result is
 * still in registers.  The bias is already an operand of conv2d and dense.
 * Legal when the relu is the only user of the conv/dense result; the relu's
 * users then read the fused op's result.  Runs after training, so the
 * backward ops (relu_bwd reads the activation) see the fused result too. */
#include "passes.h"

static bool fusable_producer(const DnOp *op)
{
    return (op->kind == DN_OP_CONV2D || op->kind == DN_OP_DENSE) && strcmp(dn_op_str(op, "act"), "none") == 0;
}

static void set_act(DnGraph *g, DnOp *op, const char *act)
{
    for (int a = 0; a < op->nattrs; a++)
        if (strcmp(op->attrs[a].name, "act") == 0) op->attrs[a].s = dn_arena_strdup(&g->arena, act);
}

DnStatus dn_pass_fuse_conv(DnPassCtx *pc, DnGraph *g)
{
    int *uses = dn_fill_uses(g, &pc->scratch);
    for (int i = 0; i < g->ops.len; i++) {
        DnOp *relu = g->ops.data[i];
        if (relu->dead || relu->kind != DN_OP_RELU) continue;
        DnValue *x = relu->in[0];
        if (x->kind != DN_VAL_OP || !fusable_producer(x->def) || uses[x->id] != 1) continue;
        if (dn_graph_is_output(g, x)) continue;
        DnOp *producer = x->def;
        set_act(g, producer, "relu");
        dn_graph_replace_uses(g, relu->out[0], x);
        relu->dead = true;
    }
    return DN_OK;
}
