/* layers_encoder.c -- transformer_encoder_layer and
 * transformer_decoder_layer, as nn.TransformerEncoderLayer and
 * nn.TransformerDecoderLayer (d_model, nhead, batch_first=True) compute
 * and name them, composed from the layers that exist (multihead_attention,
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
 *
 *   transformer_decoder_layer(memory, d_model, nhead, <the same>,
 *       tgt_mask=none, memory_mask=none, tgt_key_padding_mask=none,
 *       memory_key_padding_mask=none, tgt_is_causal=false)
 *   x [N, T, d] and memory [N, S, d] -> [N, T, d]; parameters as the
 *   encoder's plus multihead_attn.* (the cross-attention into memory) and
 *   norm3.*:  norm_first=false:  x = norm1(x + drop(sa(x)));
 *   x = norm2(x + drop(mha(x, memory)));  x = norm3(x + drop(ff(x)));
 *   norm_first=true: each block on the normed x, added to x.
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

/* Checks the shared arguments: x [N, T, d_model] and the ranges. */
static bool check_args(Enc *t, DnValue *x, int64_t d, int64_t ff, double p, double eps, const char *act)
{
    char b1[96];
    if (x->shape.rank != 3 || x->shape.dim[2] != d) {
        dn_error(t->L->cx, t->e->loc, "%s: input %s must be [N, T, d_model] = [N, T, %lld]", t->e->s,
                 dn_type_str(x->dtype, &x->shape, b1, sizeof b1), (long long)d);
        return false;
    }
    if (ff < 1 || !(p >= 0 && p < 1) || !(eps > 0) || (strcmp(act, "relu") && strcmp(act, "gelu"))) {
        dn_error(t->L->cx, t->e->loc,
                 "%s: dim_feedforward >= 1, dropout in [0, 1), layer_norm_eps > 0 and activation \"relu\" or "
                 "\"gelu\", got %lld, %g, %g and \"%s\"",
                 t->e->s, (long long)ff, p, eps, act);
        return false;
    }
    return true;
}

/* drop(<label>.<leaf>: multihead_attention(q, kv, kv, masks)) */
static DnValue *attn_block(Enc *t, const char *leaf, DnValue *q, DnValue *kv, int64_t heads, Val kpm, Val am,
                           Val causal, double p)
{
    if (!q || !kv) return NULL;
    /* multihead_attention's arguments: key, value, num_heads, key_padding_mask, attn_mask, is_causal, dropout, bias */
    Val ma[8] = {
        {.kind = VAL_TENSOR, .t = kv}, {.kind = VAL_TENSOR, .t = kv}, {.kind = VAL_INT, .i = heads}, kpm, am, causal,
        {.kind = VAL_FLOAT, .f = p},   {.kind = VAL_BOOL, .i = 1}};
    return drop(t, dn_build_mha(t->L, t->e, sub(t, leaf), &q, ma), p);
}

/* drop(linear2(drop(act(linear1(x))))) */
static DnValue *ff_block(Enc *t, DnValue *x, int64_t ff, int64_t d, const char *act, double p)
{
    DnAttr approx = dn_attr_str("approximate", "none");
    DnValue *f = linear(t, x, "linear1", ff);
    f = !strcmp(act, "relu") ? op(t, DN_OP_RELU, 1, &f, 0, NULL) : op(t, DN_OP_GELU, 1, &f, 1, &approx);
    return drop(t, linear(t, drop(t, f, p), "linear2", d), p);
}

DnValue *dn_build_encoder_layer(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    Enc t = {L, e, name};
    DnValue *y = x[0];
    int64_t d = a[0].i, heads = a[1].i, ff = a[2].i;
    double p = a[3].f, eps = a[5].f;
    bool pre = a[6].i != 0;
    if (!check_args(&t, y, d, ff, p, eps, a[4].s)) return NULL;
    if (pre) {
        DnValue *h = norm(&t, y, "norm1", eps);
        y = add(&t, y, attn_block(&t, "self_attn", h, h, heads, a[7], a[8], a[9], p));
        return add(&t, y, ff_block(&t, norm(&t, y, "norm2", eps), ff, d, a[4].s, p));
    }
    y = norm(&t, add(&t, y, attn_block(&t, "self_attn", y, y, heads, a[7], a[8], a[9], p)), "norm1", eps);
    return norm(&t, add(&t, y, ff_block(&t, y, ff, d, a[4].s, p)), "norm2", eps);
}

DnValue *dn_build_decoder_layer(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    Enc t = {L, e, name};
    DnValue *y = x[0], *mem = x[1];
    int64_t d = a[0].i, heads = a[1].i, ff = a[2].i;
    double p = a[3].f, eps = a[5].f;
    bool pre = a[6].i != 0;
    Val no = {.kind = VAL_BOOL, .i = 0};
    if (!check_args(&t, y, d, ff, p, eps, a[4].s) || !check_args(&t, mem, d, ff, p, eps, a[4].s)) return NULL;
    if (pre) {
        DnValue *h = norm(&t, y, "norm1", eps);
        y = add(&t, y, attn_block(&t, "self_attn", h, h, heads, a[9], a[7], a[11], p));
        y = add(&t, y, attn_block(&t, "multihead_attn", norm(&t, y, "norm2", eps), mem, heads, a[10], a[8], no, p));
        return add(&t, y, ff_block(&t, norm(&t, y, "norm3", eps), ff, d, a[4].s, p));
    }
    y = norm(&t, add(&t, y, attn_block(&t, "self_attn", y, y, heads, a[9], a[7], a[11], p)), "norm1", eps);
    y = norm(&t, add(&t, y, attn_block(&t, "multihead_attn", y, mem, heads, a[10], a[8], no, p)), "norm2", eps);
    return norm(&t, add(&t, y, ff_block(&t, y, ff, d, a[4].s, p)), "norm3", eps);
}
