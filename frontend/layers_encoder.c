/* layers_encoder.c -- transformer_encoder_layer, as
 * nn.TransformerEncoderLayer(d_model, nhead, batch_first=True) computes and
 * names it, composed from the layers that exist (multihead_attention,
 * dense, layernorm, dropout, relu/gelu), so its gradient and kernels are
 * theirs:
 *
 *   transformer_encoder_layer(d_model, nhead, dim_feedforward=2048,
 *       dropout=0.1, activation="relu", layer_norm_eps=1e-5,
 *       norm_first=false, src_key_padding_mask=none, src_mask=none,
 *       is_causal=false)
 *   x [N, T, d_model] -> [N, T, d_model];  parameters under the label:
 *   self_attn.{in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias},
 *   linear1.{weight [ff, d], bias}, linear2.{weight [d, ff], bias},
 *   norm1.{weight, bias}, norm2.{weight, bias}.
 *     norm_first=false:  x = norm1(x + drop(sa(x)));  x = norm2(x + drop(ff(x)))
 *     norm_first=true:   x = x + drop(sa(norm1(x)));  x = x + drop(ff(norm2(x)))
 *   with ff(x) = linear2(drop(act(linear1(x)))), and the attention's own
 *   dropout on its weights (each dropout a training-only op).  The masks
 *   are multihead_attention's key_padding_mask and attn_mask.
 */
#include "ast.h"

#include <math.h>

typedef struct Enc {
    Lower *L;
    const AstExpr *e;
    const char *name; /* the layer's label */
} Enc;

static const char *sub(Enc *t, const char *leaf) { return dn_arena_printf(t->L->a, "%s.%s", t->name, leaf); }

static DnValue *op(Enc *t, DnOpKind k, int n, DnValue **in, int nattr, const DnAttr *at)
{
    for (int i = 0; i < n; i++)
        if (!in[i]) return NULL;
    return dn_build1(t->L->cx, t->L->g, k, n, in, nattr, at, t->e->loc);
}

/* nn.Linear(in, out) named <label>.<leaf>. */
static DnValue *linear(Enc *t, DnValue *x, const char *leaf, int64_t out)
{
    if (!x) return NULL;
    int64_t in = x->shape.dim[x->shape.rank - 1], wd[2] = {out, in};
    DnInit init = dn_layer_kaiming((double)in);
    DnValue *ops[3] = {
        x, dn_layer_param(t->L, t->name, dn_arena_printf(t->L->a, "%s.weight", leaf), 2, wd, init, t->e->loc),
        dn_layer_param(t->L, t->name, dn_arena_printf(t->L->a, "%s.bias", leaf), 1, &out, init, t->e->loc)};
    return op(t, DN_OP_DENSE, 3, ops, 0, NULL);
}

/* nn.LayerNorm(d, eps) named <label>.<leaf>. */
static DnValue *norm(Enc *t, DnValue *x, const char *leaf, double eps)
{
    if (!x) return NULL;
    int64_t d = x->shape.dim[x->shape.rank - 1];
    DnInit ones = {.kind = DN_INIT_ONES}, zeros = {.kind = DN_INIT_ZEROS};
    DnValue *ops[3] = {
        x, dn_layer_param(t->L, t->name, dn_arena_printf(t->L->a, "%s.weight", leaf), 1, &d, ones, t->e->loc),
        dn_layer_param(t->L, t->name, dn_arena_printf(t->L->a, "%s.bias", leaf), 1, &d, zeros, t->e->loc)};
    DnAttr at[2] = {dn_attr_int("dims", 1), dn_attr_float("eps", eps)};
    return op(t, DN_OP_LAYERNORM, 3, ops, 2, at);
}

static DnValue *drop(Enc *t, DnValue *x, double p)
{
    if (!x || p == 0) return x;
    DnAttr at[2] = {dn_attr_float("p", p), dn_attr_int("salt", t->L->next_salt++)};
    return op(t, DN_OP_DROPOUT, 1, &x, 2, at);
}

static DnValue *add(Enc *t, DnValue *a, DnValue *b) { return op(t, DN_OP_ADD, 2, (DnValue *[]){a, b}, 0, NULL); }

DnValue *dn_build_encoder_layer(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    Enc t = {L, e, name};
    DnValue *in = x[0];
    int64_t d = a[0].i, heads = a[1].i, ff = a[2].i;
    double p = a[3].f, eps = a[5].f;
    const char *act = a[4].s;
    bool norm_first = a[6].i != 0;
    char b1[96];
    if (in->shape.rank != 3 || in->shape.dim[2] != d) {
        dn_error(L->cx, e->loc, "transformer_encoder_layer: input %s must be [N, T, d_model] = [N, T, %lld]",
                 dn_type_str(in->dtype, &in->shape, b1, sizeof b1), (long long)d);
        return NULL;
    }
    if (ff < 1 || !(p >= 0 && p < 1) || !(eps > 0) || (strcmp(act, "relu") && strcmp(act, "gelu"))) {
        dn_error(L->cx, e->loc,
                 "transformer_encoder_layer: dim_feedforward >= 1, dropout in [0, 1), layer_norm_eps > 0 and "
                 "activation \"relu\" or \"gelu\", got %lld, %g, %g and \"%s\"",
                 (long long)ff, p, eps, act);
        return NULL;
    }
    /* multihead_attention's arguments: key, value, num_heads, key_padding_mask, attn_mask, is_causal, dropout, bias */
    Val ma[8] = {
        {.kind = VAL_NONE},          {.kind = VAL_NONE},        {.kind = VAL_INT, .i = heads}, a[7], a[8], a[9],
        {.kind = VAL_FLOAT, .f = p}, {.kind = VAL_BOOL, .i = 1}};
    DnValue *h = norm_first ? norm(&t, in, "norm1", eps) : in;
    DnValue *s = h ? dn_build_mha(L, e, sub(&t, "self_attn"), &h, ma) : NULL;
    DnValue *y = add(&t, in, drop(&t, s, p));
    if (!norm_first) y = norm(&t, y, "norm1", eps);
    h = norm_first ? norm(&t, y, "norm2", eps) : y;
    DnAttr approx = dn_attr_str("approximate", "none");
    DnValue *f = linear(&t, h, "linear1", ff);
    f = !strcmp(act, "relu") ? op(&t, DN_OP_RELU, 1, &f, 0, NULL) : op(&t, DN_OP_GELU, 1, &f, 1, &approx);
    f = linear(&t, drop(&t, f, p), "linear2", d);
    y = add(&t, y, drop(&t, f, p));
    return norm_first ? y : norm(&t, y, "norm2", eps);
}
