/* attention_geom.c -- dn_attention_geom (ir.h): the shapes and bias
 * strides of a flash_attention or flash_attention_bwd op, in one place
 * for the CPU and GPU kernel generators. */
#include "ir.h"

DnAttnGeom dn_attention_geom(const DnOp *op)
{
    const DnShape *q = &op->in[0]->shape, *k = &op->in[1]->shape, *v = &op->in[2]->shape;
    int r = q->rank, bias_at = op->kind == DN_OP_FLASH_ATTENTION ? 3 : 6;
    DnAttnGeom a = {.nlead = r - 2, .lead = 1, .scale = dn_op_float(op, "scale"), .causal = dn_op_int(op, "causal")};
    for (int i = 0; i < r - 2; i++) {
        a.lead_dim[i] = q->dim[i];
        if (q->dim[i] == DN_DIM_N)
            a.has_n = true;
        else
            a.lead *= q->dim[i];
    }
    a.Tq = q->dim[r - 2];
    a.d = q->dim[r - 1];
    a.Tk = k->dim[r - 2];
    a.dv = v->dim[r - 1];
    a.bias = op->nin > bias_at && op->in[bias_at];
    if (!a.bias) return a;
    /* the bias right-aligned to the scores [lead..., Tq, Tk]; contiguous strides, 0 where broadcast */
    const DnShape *b = &op->in[bias_at]->shape;
    int64_t stride[DN_MAX_RANK + 2] = {0}, s = 1;
    for (int i = r - 1; i >= 0; i--) {
        int bi = i - (r - b->rank);
        int64_t dim = bi >= 0 ? b->dim[bi] : 1;
        stride[i] = dim == 1 ? 0 : s;
        if (dim != DN_DIM_N && dim > 1) s *= dim;
    }
    for (int i = 0; i < r - 2; i++) a.b_lead[i] = stride[i];
    a.b_si = stride[r - 2];
    a.b_sj = stride[r - 1];
    return a;
}
