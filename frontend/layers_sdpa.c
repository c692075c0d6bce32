/* layers_sdpa.c -- scaled_dot_product_attention (the arithmetic of
 * F.scaled_dot_product_attention), lowered entirely from existing ops, so
 * its gradient and its CPU and GPU kernels are theirs, and the
 * softmax(Q·Kᵀ·scale + mask)·V pattern stays visible in the IR:
 *
 *   scaled_dot_product_attention(q, k, v, mask=none, is_causal=false,
 *                                dropout=0, scale=0)
 *   q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv], the leading axes the
 *   same in all three (N first, heads after it, ...)  ->  [..., Tq, dv]:
 *     s = matmul(q, k, trans_b) * scale      (scale 0: 1 / sqrt(d))
 *     s += (mask - 1) * 1e9                  mask f32, 1 = take part (as a
 *                                            bool attn_mask), broadcast to
 *                                            s's shape numpy-style
 *     s += causal_bias(Tq, Tk)               is_causal: key j > query i is
 *                                            masked
 *     w = softmax(s, axis=-1), then dropout(w, p) when dropout > 0 (a
 *     training-only op: inference drops it)
 *     out = matmul(w, v)
 *   A masked score gets -1e9 added: its weight is exactly 0 in f32 unless
 *   every key of the row is masked (then the weights are about uniform).
 */
#include "ast.h"

#include <math.h>

typedef struct Sdpa {
    Lower *L;
    const AstExpr *e;
} Sdpa;

static DnValue *op(Sdpa *t, DnOpKind k, int n, DnValue *x, DnValue *y, int nattr, const DnAttr *at)
{
    DnValue *in[2] = {x, y};
    if (!x || (n > 1 && !y)) return NULL;
    return dn_build1(t->L->cx, t->L->g, k, n, n ? in : NULL, nattr, at, t->e->loc);
}

static const char *ty(const DnValue *v, char *buf) { return dn_type_str(v->dtype, &v->shape, buf, 96); }

/* q, k, v: ranks >= 2, f32, one set of leading axes, matching d and Tk. */
static bool check(Sdpa *t, DnValue *q, DnValue *k, DnValue *v)
{
    char b1[96], b2[96], b3[96];
    const DnShape *qs = &q->shape, *ks = &k->shape, *vs = &v->shape;
    int r = qs->rank;
    bool ok = r >= 2 && ks->rank == r && vs->rank == r && q->dtype == DN_DTYPE_F32 && k->dtype == DN_DTYPE_F32 &&
              v->dtype == DN_DTYPE_F32;
    for (int i = 0; ok && i < r - 2; i++) ok = qs->dim[i] == ks->dim[i] && qs->dim[i] == vs->dim[i];
    ok = ok && qs->dim[r - 1] == ks->dim[r - 1] && ks->dim[r - 2] == vs->dim[r - 2];
    for (int i = 1; ok && i < r; i++) ok = qs->dim[i] >= 1 && ks->dim[i] >= 1 && vs->dim[i] >= 1;
    if (!ok)
        dn_error(t->L->cx, t->e->loc,
                 "%s: query %s, keys %s and values %s must be f32 [..., Tq, d], "
                 "[..., Tk, d] and [..., Tk, dv] with the same leading axes and static sizes after N",
                 t->e->s, ty(q, b1), ty(k, b2), ty(v, b3));
    return ok;
}

DnValue *dn_lower_sdpa(Lower *L, const AstExpr *e, DnValue *q, DnValue *k, DnValue *v, DnValue *mask, bool causal,
                       double p, double scale)
{
    Sdpa t = {L, e};
    if (!q || !k || !v || !check(&t, q, k, v)) return NULL;
    if (!(p >= 0 && p < 1) || !(scale >= 0) || !isfinite(scale)) {
        dn_error(L->cx, e->loc, "%s: dropout must be in [0, 1) and scale >= 0, got %g and %g", e->s, p, scale);
        return NULL;
    }
    int r = q->shape.rank;
    int64_t d = q->shape.dim[r - 1], Tq = q->shape.dim[r - 2], Tk = k->shape.dim[r - 2];
    DnAttr tb[2] = {dn_attr_int("trans_a", 0), dn_attr_int("trans_b", 1)};
    DnValue *s = op(&t, DN_OP_MATMUL, 2, q, k, 2, tb);
    DnAttr al = dn_attr_float("alpha", scale > 0 ? scale : 1.0 / sqrt((double)d));
    s = op(&t, DN_OP_SCALE, 1, s, NULL, 1, &al);
    if (mask) { /* (mask - 1) * 1e9 = mask * 1e9 + (-1e9), exact in f32 for a 0/1 mask */
        DnAttr big = dn_attr_float("alpha", 1e9);
        DnAttr fill[2] = {dn_attr_float("value", -1e9), dn_attr_ints("shape", 0, NULL)};
        DnValue *m = op(&t, DN_OP_SCALE, 1, mask, NULL, 1, &big);
        DnValue *c = dn_build1(L->cx, L->g, DN_OP_FILL, 0, NULL, 2, fill, e->loc);
        s = op(&t, DN_OP_ADD, 2, s, op(&t, DN_OP_ADD, 2, m, c, 0, NULL), 0, NULL);
    }
    if (causal) {
        DnAttr at[2] = {dn_attr_int("rows", Tq), dn_attr_int("cols", Tk)};
        s = op(&t, DN_OP_ADD, 2, s, dn_build1(L->cx, L->g, DN_OP_CAUSAL_BIAS, 0, NULL, 2, at, e->loc), 0, NULL);
    }
    DnAttr axis = dn_attr_int("axis", r - 1);
    DnValue *w = op(&t, DN_OP_SOFTMAX, 1, s, NULL, 1, &axis);
    if (p > 0) {
        DnAttr at[2] = {dn_attr_float("p", p), dn_attr_int("salt", L->next_salt++)};
        w = op(&t, DN_OP_DROPOUT, 1, w, NULL, 2, at);
    }
    return op(&t, DN_OP_MATMUL, 2, w, v, 0, NULL);
}

DnValue *dn_build_sdpa(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    return dn_lower_sdpa(L, e, x[0], x[1], x[2], a[0].kind == VAL_TENSOR ? a[0].t : NULL, a[1].i != 0, a[2].f, a[3].f);
}
