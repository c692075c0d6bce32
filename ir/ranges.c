/* ranges.c -- what an integer graph input may hold, derived from the ops
 * that read it.  The generated descriptor carries the range so the runtime
 * rejects a bad label at the API with a message, instead of the kernel
 * silently ignoring it.  One row per reading op; cross_entropy's labels
 * may also hold its ignore_index (dn_input_extra). */
#include "ir.h"

/* The range op 'op' imposes on its operand 'k', or false. */
static bool op_range(const DnOp *op, int k, int64_t *lo, int64_t *hi)
{
    switch (op->kind) {
    case DN_OP_CROSS_ENTROPY:
    case DN_OP_CROSS_ENTROPY_BWD:
        if (k != 1) return false;
        *lo = 0;
        *hi = op->in[0]->shape.dim[op->in[0]->shape.rank - 1] - 1;
        return true;
    case DN_OP_EMBEDDING: /* token ids: rows of the table */
        if (k != 0) return false;
        *lo = 0;
        *hi = op->in[1]->shape.dim[0] - 1;
        return true;
    case DN_OP_EMBEDDING_BWD:
        if (k != 0) return false;
        *lo = 0;
        *hi = dn_op_int(op, "num") - 1;
        return true;
    case DN_OP_SINUSOID: /* positions: rows of the table */
        if (k != 0) return false;
        *lo = 0;
        *hi = dn_op_int(op, "rows") - 1;
        return true;
    case DN_OP_CACHED_ATTENTION: /* the step's position: a row of the cache */
        if (k != 5) return false;
        *lo = 0;
        *hi = op->in[3]->shape.dim[1] - 1;
        return true;
    default: return false;
    }
}

bool dn_input_range(const DnGraph *g, const DnValue *v, int64_t *lo, int64_t *hi)
{
    bool found = false;
    for (int i = 0; i < g->ops.len; i++) {
        const DnOp *op = g->ops.data[i];
        for (int k = 0; !op->dead && k < op->nin; k++) {
            int64_t a, b;
            if (op->in[k] != v || !op_range(op, k, &a, &b)) continue;
            *lo = found && *lo > a ? *lo : a; /* several readers: the intersection */
            *hi = found && *hi < b ? *hi : b;
            found = true;
        }
    }
    return found;
}

/* The extra value op 'op' accepts in its operand 'k' besides its range, or false. */
static bool op_extra(const DnOp *op, int k, int64_t *extra)
{
    if ((op->kind != DN_OP_CROSS_ENTROPY && op->kind != DN_OP_CROSS_ENTROPY_BWD) || k != 1) return false;
    *extra = dn_op_int(op, "ignore_index");
    return true;
}

bool dn_input_extra(const DnGraph *g, const DnValue *v, int64_t *extra)
{
    bool found = false;
    for (int i = 0; i < g->ops.len; i++) {
        const DnOp *op = g->ops.data[i];
        for (int k = 0; !op->dead && k < op->nin; k++) {
            int64_t lo, hi, e;
            if (op->in[k] != v || !op_range(op, k, &lo, &hi)) continue;
            if (!op_extra(op, k, &e) || (found && e != *extra)) return false; /* a reader without it */
            *extra = e;
            found = true;
        }
    }
    return found;
}
