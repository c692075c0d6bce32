/* cost.c -- the cost column of the op table: how much work an op does, as
 * a function of the batch size n (coefficient of n + fixed part).
 * Backends use it to keep tiny kernels off the thread pool; reports and a
 * future scheduler can use it too.  FLOPs count a multiply-add as 2;
 * elementwise and data-movement ops count one FLOP per result element,
 * check_finite one per element it tests. */
#include "ir.h"

/* Adds 'per' times the element count of 'v' to *c_n / *c_b. */
static void add_elems(const DnValue *v, int64_t per, int64_t *c_n, int64_t *c_b)
{
    int64_t e = dn_shape_numel_static(&v->shape) * per;
    if (dn_shape_has_n(&v->shape))
        *c_n += e;
    else
        *c_b += e;
}

/* Multiply-adds per element of the op's reference tensor (see dn_op_cost). */
static int64_t macs_per_elem(const DnOp *op)
{
    switch (op->kind) {
    case DN_OP_CONV2D:
    case DN_OP_CONV2D_BWD_DATA:
    case DN_OP_CONV2D_BWD_FILTER: {
        const DnValue *w = op->kind == DN_OP_CONV2D || op->kind == DN_OP_CONV2D_BWD_DATA ? op->in[1] : op->out[0];
        return w->shape.dim[1] * w->shape.dim[2] * w->shape.dim[3];
    }
    case DN_OP_DENSE: return op->in[1]->shape.dim[1];
    case DN_OP_MATMUL: {
        const DnValue *a = op->in[0];
        return a->shape.dim[a->shape.rank - (dn_op_int(op, "trans_a") ? 2 : 1)];
    }
    case DN_OP_RNN_SCAN: return op->in[1]->shape.dim[0];     /* w_hh h per step: G*H per element of y */
    case DN_OP_RNN_SCAN_BWD: return op->in[3]->shape.dim[1]; /* w_hh^T dhg: H per element of dxg */
    case DN_OP_LAYERNORM:
    case DN_OP_LAYERNORM_BWD: return 3; /* three passes over each row */
    case DN_OP_FLASH_ATTENTION:         /* q kᵀ and p v: Tk (d + dv) per element of o, d + dv = 2 d typically */
        return op->in[1]->shape.dim[op->in[1]->shape.rank - 2] * 2;
    case DN_OP_FLASH_ATTENTION_BWD: /* q kᵀ twice, do vᵀ twice, pᵀ do, dsᵀ q, ds k: ~7 products per score */
        return op->in[1]->shape.dim[op->in[1]->shape.rank - 2] * 7;
    case DN_OP_CACHED_ATTENTION: /* at most S keys, three passes (max, exp and sum, p v) */
        return op->in[3]->shape.dim[1] * 3;
    default: return 0;
    }
}

void dn_op_cost(const DnOp *op, DnCost *c)
{
    *c = (DnCost){0};
    for (int i = 0; i < op->nin; i++)
        if (op->in[i]) add_elems(op->in[i], dn_dtype_size(op->in[i]->dtype), &c->bytes_n, &c->bytes_b);
    for (int i = 0; i < op->nout; i++)
        add_elems(op->out[i], dn_dtype_size(op->out[i]->dtype), &c->bytes_n, &c->bytes_b);
    int64_t macs = macs_per_elem(op);
    /* The tensor the multiply-adds run over: the result, except for the
     * convolution gradients, which run over dy (one MAC per weight tap). */
    const DnValue *ref = op->kind == DN_OP_CONV2D_BWD_DATA     ? op->in[0]
                         : op->kind == DN_OP_CONV2D_BWD_FILTER ? op->in[1]
                         : op->nout                            ? op->out[0]
                                                               : op->in[0];
    add_elems(ref, macs ? 2 * macs : 1, &c->flops_n, &c->flops_b);
    if (op->kind == DN_OP_LAYERNORM_BWD_PARAMS) /* sums over the rows: a few flops per element of dy */
        add_elems(op->in[2], 4, &c->flops_n, &c->flops_b);
    if (op->kind == DN_OP_CHECK_FINITE) /* a reduction: one test per element it reads */
        for (int i = 0; i < op->nin; i++) add_elems(op->in[i], 1, &c->flops_n, &c->flops_b);
}
