/* shape.c -- the op table, dtype and shape helpers, and the builder.
 *
 * dn_op_info is generated from ops.def.  dn_build is how every op enters a
 * graph (frontend lowering, autodiff, passes, the IR reader): it completes
 * attributes (attrs.c), runs the op's shape rule (shape_rules.c) and only
 * then appends the op, so a graph never holds an op whose shapes are wrong.
 */
#include "ir.h"

const DnOpInfo dn_op_info[DN_OP_COUNT] = {
#define OP(E, nm, mi, ma, no, fl, at) [DN_OP_##E] = {#nm, mi, ma, no, fl, at},
#include "ops.def"
#undef OP
};

DnOpKind dn_op_lookup(const char *name)
{
    for (int k = 0; k < DN_OP_COUNT; k++)
        if (strcmp(dn_op_info[k].name, name) == 0) return (DnOpKind)k;
    return DN_OP_COUNT;
}

/* ---- dtypes and shapes ---------------------------------------------------- */

int dn_dtype_size(DnDType t)
{
    static const int size[DN_DTYPE_COUNT] = {4, 4, 8}; /* ORDER DN_DTYPE */
    DN_ASSERT((unsigned)t < DN_DTYPE_COUNT);
    return size[t];
}

const char *dn_dtype_name(DnDType t)
{
    static const char *name[DN_DTYPE_COUNT] = {"f32", "i32", "i64"}; /* ORDER DN_DTYPE */
    return (unsigned)t < DN_DTYPE_COUNT ? name[t] : "?";
}

bool dn_shape_has_n(const DnShape *s) { return s->rank > 0 && s->dim[0] == DN_DIM_N; }

int64_t dn_shape_numel_static(const DnShape *s)
{
    int64_t n = 1;
    for (int i = dn_shape_has_n(s) ? 1 : 0; i < s->rank; i++)
        n *= DN_DIM_IS_SEQ(s->dim[i]) ? DN_SEQ_BOUND(s->dim[i]) : s->dim[i];
    return n;
}

bool dn_type_fits(DnDType t, const DnShape *s)
{
    int64_t bytes = dn_dtype_size(t);
    for (int i = dn_shape_has_n(s) ? 1 : 0; i < s->rank; i++) {
        int64_t d = i == 1 && DN_DIM_IS_SEQ(s->dim[i]) ? DN_SEQ_BOUND(s->dim[i]) : s->dim[i];
        if (d < 0 || __builtin_mul_overflow(bytes, d, &bytes) || bytes > DN_MAX_TENSOR_BYTES) return false;
    }
    return true;
}

bool dn_shape_eq(const DnShape *a, const DnShape *b)
{
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

char *dn_type_str(DnDType t, const DnShape *s, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "%s[", dn_dtype_name(t));
    for (int i = 0; i < s->rank && at < len; i++) {
        if (s->dim[i] == DN_DIM_N)
            at += (size_t)snprintf(buf + at, len - at, "%sN", i ? ", " : "");
        else if (DN_DIM_IS_SEQ(s->dim[i]))
            at += (size_t)snprintf(buf + at, len - at, "%sT<=%lld", i ? ", " : "", (long long)DN_SEQ_BOUND(s->dim[i]));
        else
            at += (size_t)snprintf(buf + at, len - at, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
    }
    if (at < len) snprintf(buf + at, len - at, "]");
    return buf;
}

/* ---- the builder ---------------------------------------------------------- */

static bool check_arity(DnCtx *cx, DnOpKind kind, int nin, DnLoc loc)
{
    const DnOpInfo *info = &dn_op_info[kind];
    if (nin >= info->min_in && nin <= info->max_in) return true;
    if (info->min_in == info->max_in)
        dn_error(cx, loc, "%s expects %d operand%s, got %d", info->name, info->min_in, info->min_in == 1 ? "" : "s",
                 nin);
    else
        dn_error(cx, loc, "%s expects %d to %d operands, got %d", info->name, info->min_in, info->max_in, nin);
    return false;
}

/* "operand 1 is f32[N, T<=50, 64]": the first value of 'op' with T (for diagnostics). */
static const char *seq_operand(const DnOp *op, char *buf, size_t len)
{
    char ty[96];
    for (int i = 0; i < op->nin; i++)
        if (dn_shape_has_seq(&op->in[i]->shape)) {
            snprintf(buf, len, "operand %d is %s", i + 1,
                     dn_type_str(op->in[i]->dtype, &op->in[i]->shape, ty, sizeof ty));
            return buf;
        }
    for (int i = 0; op->out && i < op->nout; i++)
        if (dn_shape_has_seq(&op->out[i]->shape)) {
            snprintf(buf, len, "result %d is %s", i + 1,
                     dn_type_str(op->out[i]->dtype, &op->out[i]->shape, ty, sizeof ty));
            return buf;
        }
    return "";
}

DnOp *dn_build(DnCtx *cx, DnGraph *g, DnOpKind kind, int nin, DnValue **in, int nattrs, const DnAttr *attrs, DnLoc loc)
{
    DN_ASSERT(kind >= 0 && kind < DN_OP_COUNT && nin >= 0);
    for (int i = 0; i < nin; i++)
        if (!in[i]) return NULL; /* poisoned operand: already reported */
    if (!check_arity(cx, kind, nin, loc)) return NULL;
    DnOp *op = dn_arena_alloc(&g->arena, sizeof *op);
    op->kind = kind;
    op->loc = dn_graph_loc(g, loc);
    op->attrs = dn_attrs_complete(cx, g, kind, in, nattrs, attrs, loc, &op->nattrs);
    if (!op->attrs) return NULL;
    op->nin = nin;
    op->in = dn_arena_alloc(&g->arena, (size_t)(nin + 1) * sizeof *op->in);
    if (nin) memcpy(op->in, in, (size_t)nin * sizeof *in);
    op->nout = dn_op_info[kind].nout;
    char sq[160];
    if (!dn_op_kind_takes_seq(kind) && dn_op_has_seq(op)) {
        dn_error(cx, loc, "%s does not take the run-time sequence axis T yet (%s)", dn_op_info[kind].name,
                 seq_operand(op, sq, sizeof sq));
        return NULL;
    }
    const char *why;
    if (!dn_op_seq_operands_ok(op, &why)) {
        dn_error(cx, loc, "%s over the run-time sequence axis T is not supported yet: %s (%s)", dn_op_info[kind].name,
                 why, seq_operand(op, sq, sizeof sq));
        return NULL;
    }
    DnDType dt[DN_MAX_OUTS];
    DnShape sh[DN_MAX_OUTS];
    if (dn_infer_shapes(cx, op, dt, sh) != DN_OK) return NULL;
    op->out = dn_arena_alloc(&g->arena, (size_t)(op->nout + 1) * sizeof *op->out);
    for (int i = 0; i < op->nout; i++) {
        op->out[i] = dn_graph_new_value(g, DN_VAL_OP, dt[i], &sh[i], loc);
        op->out[i]->index = i;
        op->out[i]->def = op;
    }
    if (dn_op_seq_form(op, &why) == DN_SEQ_UNSUPPORTED) {
        dn_error(cx, loc, "%s over the run-time sequence axis T is not supported yet: %s (%s)", dn_op_info[kind].name,
                 why, seq_operand(op, sq, sizeof sq));
        return NULL;
    }
    op->id = g->ops.len;
    dn_vec_push(&g->arena, &g->ops, op);
    return op;
}

DnValue *dn_build1(DnCtx *cx, DnGraph *g, DnOpKind kind, int nin, DnValue **in, int nattrs, const DnAttr *attrs,
                   DnLoc loc)
{
    DnOp *op = dn_build(cx, g, kind, nin, in, nattrs, attrs, loc);
    return op && op->nout > 0 ? op->out[0] : NULL;
}

DnRows dn_shape_rows(const DnShape *s, int trailing)
{
    DnRows r = {1, 1, false};
    for (int i = 0; i < s->rank; i++) {
        if (s->dim[i] == DN_DIM_N)
            r.has_n = true;
        else if (i < s->rank - trailing)
            r.lead *= s->dim[i];
        else
            r.D *= s->dim[i];
    }
    return r;
}
