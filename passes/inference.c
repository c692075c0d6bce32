/* inference.c -- turns the frontend's graph into the inference graph.
 * Drops the loss and the optimizer, removes dropout and the augmentations
 * (identities at inference: the model body then reads the input itself;
 * the frontend keeps augmentations shape-preserving so that it can), kills
 * what only the loss needed, then removes the train-only inputs
 * (labels), renumbering the remaining inputs.  Batchnorm is already in its
 * inference form.  Runs on the inference graph only. */
#include "passes.h"

static bool train_only_op(DnOpKind k)
{
    switch (k) {
    case DN_OP_DROPOUT:
    case DN_OP_RANDOM_FLIP:
    case DN_OP_RANDOM_CROP:
    case DN_OP_RANDOM_RESIZED_CROP:
    case DN_OP_COLOR_JITTER:
    case DN_OP_PCA_LIGHTING: return true;
    default: return false;
    }
}

/* Replaces dropout and augmentation ops by their operand. */
static DnStatus remove_train_ops(DnPassCtx *pc, DnGraph *g)
{
    for (int i = 0; i < g->ops.len; i++) {
        DnOp *op = g->ops.data[i];
        if (op->dead || !train_only_op(op->kind)) continue;
        if (!dn_shape_eq(&op->in[0]->shape, &op->out[0]->shape)) {
            char a[96], b[96];
            dn_error(pc->cx, op->loc, "inference: %s changes %s into %s, so it cannot be removed",
                     dn_op_info[op->kind].name, dn_type_str(op->in[0]->dtype, &op->in[0]->shape, a, sizeof a),
                     dn_type_str(op->out[0]->dtype, &op->out[0]->shape, b, sizeof b));
            return DN_ERR;
        }
        dn_graph_replace_uses(g, op->out[0], op->in[0]);
        op->dead = true;
    }
    return DN_OK;
}

static DnStatus drop_train_inputs(DnPassCtx *pc, DnGraph *g)
{
    int *uses = dn_fill_uses(g, &pc->scratch);
    int kept = 0;
    for (int i = 0; i < g->inputs.len; i++) {
        DnValue *v = g->inputs.data[i];
        if (v->train_only) {
            if (uses[v->id] > 0) {
                dn_error(pc->cx, v->loc, "train-only input '%s' is used by the model itself", v->name);
                return DN_ERR;
            }
            continue;
        }
        v->index = kept;
        g->inputs.data[kept++] = v;
    }
    g->inputs.len = kept;
    return DN_OK;
}

DnStatus dn_pass_inference(DnPassCtx *pc, DnGraph *g)
{
    if (pc->training) return DN_OK;
    g->loss = NULL;
    g->optim = NULL;
    if (remove_train_ops(pc, g)) return DN_ERR;
    dn_dce(g, &pc->scratch);
    return drop_train_inputs(pc, g);
}
