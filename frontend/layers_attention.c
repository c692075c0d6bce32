/* layers_attention.c -- the attention layer of encoder-decoder models,
 * lowered entirely from existing ops (matmul with batch axes, dense, add
 * with broadcasting, tanh, softmax, reshape), so its gradient and its CPU
 * and GPU kernels are theirs.
 *
 * attention(query, keys, values=keys, kind="dot", mask=none,
 *           return_weights=false, scale=false, units=0)
 *   query [B, Tq, D] (or [B, D]: one step), keys [B, Tk, Dk],
 *   values [B, Tk, Dv]  ->  context [B, Tq, Dv] (or [B, Dv]),
 *   weights = softmax over Tk of the scores [B, Tq, Tk] (or [B, Tk]).
 *   kind "dot":      score = q . k                 (Luong dot; D == Dk;
 *                    scale=true divides by sqrt(D))
 *   kind "general":  score = q . (W k)             (Luong general;
 *                    <label>.weight [D, Dk], nn.Linear(Dk, D, bias=False))
 *   kind "additive": score = v . tanh(Wq q + Wk k) (Bahdanau; units U:
 *                    <label>.query_proj.weight [U, D],
 *                    <label>.key_proj.weight [U, Dk], <label>.v.weight [1, U])
 *   mask f32 [B, Tk], 1 = keep: the scores get (mask - 1) * 1e9 added before
 *   the softmax, so a masked key's weight is exactly 0.  A row whose every
 *   key is masked has every score about -1e9 and gets (nearly) uniform
 *   weights: its context is the mean of the values, finite.
 *   return_weights=true gives the list [context, weights].
 * B is the batch axis N or a static size, the same in every operand.
 */
#include "ast.h"

#include <math.h>

/* The additive bias of masked scores: far below any score, and exact in f32. */
#define MASK_BIAS 1e9

typedef struct Att {
    Lower *L;
    const AstExpr *e;
    const char *name;
} Att;

static DnValue *op1(Att *t, DnOpKind k, DnValue *x, int nattr, const DnAttr *at)
{
    return x ? dn_build1(t->L->cx, t->L->g, k, 1, &x, nattr, at, t->e->loc) : NULL;
}

static DnValue *op2(Att *t, DnOpKind k, DnValue *x, DnValue *y, int nattr, const DnAttr *at)
{
    DnValue *in[2] = {x, y};
    return x && y ? dn_build1(t->L->cx, t->L->g, k, 2, in, nattr, at, t->e->loc) : NULL;
}

/* x reshaped to [b, d1, ...]: 'b' is x's batch axis (-1 for N). */
static DnValue *reshape(Att *t, DnValue *x, int n, const int64_t *dims)
{
    DnAttr at = dn_attr_ints("shape", n, dims);
    return op1(t, DN_OP_RESHAPE, x, 1, &at);
}

static int64_t batch(const DnValue *x) { return x->shape.dim[0] == DN_DIM_N ? -1 : x->shape.dim[0]; }

/* x [.., in] times a new bias-free nn.Linear(in, out) named <label>.<leaf>weight. */
static DnValue *linear(Att *t, DnValue *x, const char *leaf, int64_t out)
{
    if (!x) return NULL;
    int64_t in = x->shape.dim[x->shape.rank - 1], wd[2] = {out, in};
    DnValue *w = dn_layer_param(t->L, t->name, dn_arena_printf(t->L->a, "%sweight", leaf), 2, wd,
                                dn_layer_kaiming((double)in), t->e->loc);
    return w ? op2(t, DN_OP_DENSE, x, w, 0, NULL) : NULL;
}

/* Checks the operands: ranks, static sizes, and one batch axis and Tk. */
static bool check(Att *t, DnValue *q, DnValue *k, DnValue *v, DnValue *mask)
{
    Lower *L = t->L;
    char b1[96], b2[96];
    const DnShape *qs = &q->shape, *ks = &k->shape, *vs = &v->shape;
    if (qs->rank != 2 && qs->rank != 3) {
        dn_error(L->cx, t->e->loc, "attention: query must be [N, Tq, D] or [N, D], got %s",
                 dn_type_str(q->dtype, qs, b1, sizeof b1));
        return false;
    }
    const char *what[2] = {"keys", "values"};
    DnValue *kv[2] = {k, v};
    for (int i = 0; i < 2; i++)
        if (kv[i]->shape.rank != 3) {
            dn_error(L->cx, t->e->loc, "attention: %s must be [N, Tk, D], got %s", what[i],
                     dn_type_str(kv[i]->dtype, &kv[i]->shape, b1, sizeof b1));
            return false;
        }
    if (mask && (mask->dtype != DN_DTYPE_F32 || mask->shape.rank != 2 || mask->shape.dim[1] != ks->dim[1])) {
        dn_error(L->cx, t->e->loc, "attention: mask must be f32 [N, Tk] = [N, %lld] (1 = keep), got %s",
                 (long long)ks->dim[1], dn_type_str(mask->dtype, &mask->shape, b1, sizeof b1));
        return false;
    }
    DnValue *all[4] = {q, k, v, mask};
    for (int i = 0; i < 4; i++) {
        if (!all[i]) continue;
        const DnShape *s = &all[i]->shape;
        bool ok = all[i]->dtype == DN_DTYPE_F32 && s->dim[0] == ks->dim[0];
        for (int d = 1; d < s->rank; d++) ok = ok && s->dim[d] != DN_DIM_N;
        if (!ok) {
            dn_error(L->cx, t->e->loc,
                     "attention: %s %s must be f32 with the batch axis of keys %s and static sizes after it",
                     i == 0   ? "query"
                     : i == 3 ? "mask"
                              : what[i - 1],
                     dn_type_str(all[i]->dtype, &all[i]->shape, b1, sizeof b1),
                     dn_type_str(k->dtype, ks, b2, sizeof b2));
            return false;
        }
    }
    if (vs->dim[1] != ks->dim[1]) {
        dn_error(L->cx, t->e->loc, "attention: values %s and keys %s must have one length Tk",
                 dn_type_str(v->dtype, vs, b1, sizeof b1), dn_type_str(k->dtype, ks, b2, sizeof b2));
        return false;
    }
    return true;
}

/* The scores [B, Tq, Tk] of query q3 [B, Tq, D] against keys k. */
static DnValue *scores(Att *t, const char *kind, DnValue *q3, DnValue *k, int64_t units, bool scale)
{
    Lower *L = t->L;
    int64_t D = q3->shape.dim[2], Dk = k->shape.dim[2], Tq = q3->shape.dim[1], Tk = k->shape.dim[1];
    bool additive = !strcmp(kind, "additive");
    if (strcmp(kind, "dot") && strcmp(kind, "general") && !additive) {
        dn_error(L->cx, t->e->loc, "attention: kind must be \"dot\", \"general\" or \"additive\", got \"%s\"", kind);
        return NULL;
    }
    if (!strcmp(kind, "dot") && D != Dk) {
        dn_error(L->cx, t->e->loc,
                 "attention: kind \"dot\" needs query and keys of one size, got %lld and %lld (kind \"general\" "
                 "or \"additive\" relate different sizes)",
                 (long long)D, (long long)Dk);
        return NULL;
    }
    if (additive != (units != 0) || units < 0) {
        dn_error(L->cx, t->e->loc, "attention: %s",
                 additive ? "kind \"additive\" needs units >= 1 (its hidden size)"
                          : "units applies only to kind \"additive\"");
        return NULL;
    }
    if (additive && scale) {
        dn_error(L->cx, t->e->loc, "attention: scale applies only to kinds \"dot\" and \"general\"");
        return NULL;
    }
    if (!additive) {
        DnValue *kk = !strcmp(kind, "general") ? linear(t, k, "", D) : k;
        DnAttr tb = dn_attr_int("trans_b", 1);
        DnValue *s = op2(t, DN_OP_MATMUL, q3, kk, 1, &tb);
        DnAttr alpha = dn_attr_float("alpha", 1 / sqrt((double)D));
        return scale ? op1(t, DN_OP_SCALE, s, 1, &alpha) : s;
    }
    int64_t b = batch(k), qd[4] = {b, Tq, 1, units}, kd[4] = {b, 1, Tk, units}, sd[3] = {b, Tq, Tk};
    DnValue *qp = reshape(t, linear(t, q3, "query_proj.", units), 4, qd);
    DnValue *kp = reshape(t, linear(t, k, "key_proj.", units), 4, kd);
    DnValue *h = op1(t, DN_OP_TANH, op2(t, DN_OP_ADD, qp, kp, 0, NULL), 0, NULL);
    return reshape(t, linear(t, h, "v.", 1), 3, sd); /* [B, Tq, Tk, 1] -> [B, Tq, Tk] */
}

/* scores + (mask - 1) * MASK_BIAS, the mask [B, Tk] broadcast over Tq. */
static DnValue *masked(Att *t, DnValue *s, DnValue *mask)
{
    DnAttr one[2] = {dn_attr_float("value", 1), dn_attr_ints("shape", 0, NULL)};
    DnValue *ones = dn_build1(t->L->cx, t->L->g, DN_OP_FILL, 0, NULL, 2, one, t->e->loc);
    DnAttr big = dn_attr_float("alpha", MASK_BIAS);
    DnValue *bias = op1(t, DN_OP_SCALE, op2(t, DN_OP_SUB, mask, ones, 0, NULL), 1, &big);
    int64_t d[3] = {batch(mask), 1, mask->shape.dim[1]};
    return op2(t, DN_OP_ADD, s, reshape(t, bias, 3, d), 0, NULL);
}

Val dn_build_attention(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    Att t = {L, e, name};
    DnValue *q = x[0], *k = x[1], *v = a[0].kind == VAL_TENSOR ? a[0].t : k;
    DnValue *mask = a[2].kind == VAL_TENSOR ? a[2].t : NULL;
    if (!check(&t, q, k, v, mask)) return dn_val_poison();
    bool step = q->shape.rank == 2; /* one query per item: [B, D] */
    int64_t b = batch(k), Tk = k->shape.dim[1], Dv = v->shape.dim[2];
    int64_t q3d[3] = {b, 1, q->shape.dim[1]};
    DnValue *q3 = step ? reshape(&t, q, 3, q3d) : q;
    DnValue *s = q3 ? scores(&t, a[1].s, q3, k, a[5].i, a[4].i) : NULL;
    if (s && mask) s = masked(&t, s, mask);
    DnAttr axis = dn_attr_int("axis", 2);
    DnValue *w = s ? op1(&t, DN_OP_SOFTMAX, s, 1, &axis) : NULL, *c = w ? op2(&t, DN_OP_MATMUL, w, v, 0, NULL) : NULL;
    if (c && step) {
        int64_t cd[2] = {b, Dv}, wd[2] = {b, Tk};
        c = reshape(&t, c, 2, cd);
        w = a[3].i ? reshape(&t, w, 2, wd) : w;
    }
    if (!c || !w) return dn_val_poison();
    if (!a[3].i) return (Val){.kind = VAL_TENSOR, .t = c};
    Val r = {.kind = VAL_LIST, .n = 2, .items = dn_arena_alloc(L->a, 3 * sizeof(Val))};
    r.items[0] = (Val){.kind = VAL_TENSOR, .t = c};
    r.items[1] = (Val){.kind = VAL_TENSOR, .t = w};
    return r;
}
