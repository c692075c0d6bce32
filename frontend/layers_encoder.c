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
 *
 * Both are dn_tf_encoder_layer / dn_tf_decoder_layer on a DnTfLayer (ast.h),
 * which the layers of layers_transformer.c fill with their own names.
 */
#include "ast.h"

#include <math.h>

typedef struct Enc {
    Lower *L;
    const AstExpr *e;
    const char *name; /* the layer's label */
    const DnTfLayer *s;
} Enc;

static const char *sub(Enc *t, const char *leaf) { return dn_arena_printf(t->L->a, "%s.%s", t->name, leaf); }

static DnValue *op(Enc *t, DnOpKind k, int n, DnValue **in, int nattr, const DnAttr *at)
{
    for (int i = 0; i < n; i++)
        if (!in[i]) return NULL;
    return dn_build1(t->L->cx, t->L->g, k, n, in, nattr, at, t->e->loc);
}

/* nn.Linear(in, out) named <label>.<leaf>, initialised as PyTorch's, or as
 * torchvision's MLPBlock with vit_init. */
static DnValue *linear(Enc *t, DnValue *x, int part, int64_t out)
{
    if (!x) return NULL;
    int64_t in = x->shape.dim[x->shape.rank - 1], wd[2] = {out, in};
    double xavier = sqrt(6.0 / (double)(in + out));
    DnInit wi =
        t->s->vit_init ? (DnInit){.kind = DN_INIT_UNIFORM, .a = -xavier, .b = xavier} : dn_layer_kaiming((double)in);
    DnInit bi = t->s->vit_init ? (DnInit){.kind = DN_INIT_NORMAL, .a = 0, .b = 1e-6} : dn_layer_kaiming((double)in);
    const char *leaf = t->s->leaf[part];
    DnValue *ops[3] = {
        x, dn_layer_param(t->L, t->name, dn_arena_printf(t->L->a, "%s.weight", leaf), 2, wd, wi, t->e->loc),
        dn_layer_param(t->L, t->name, dn_arena_printf(t->L->a, "%s.bias", leaf), 1, &out, bi, t->e->loc)};
    return op(t, DN_OP_DENSE, 3, ops, 0, NULL);
}

DnValue *dn_tf_norm(Lower *L, const AstExpr *e, const char *name, const char *leaf, DnValue *x, double eps)
{
    if (!x) return NULL;
    int64_t d = x->shape.dim[x->shape.rank - 1];
    DnInit ones = {.kind = DN_INIT_ONES}, zeros = {.kind = DN_INIT_ZEROS};
    DnValue *ops[3] = {x, dn_layer_param(L, name, dn_arena_printf(L->a, "%s.weight", leaf), 1, &d, ones, e->loc),
                       dn_layer_param(L, name, dn_arena_printf(L->a, "%s.bias", leaf), 1, &d, zeros, e->loc)};
    if (!ops[1] || !ops[2]) return NULL;
    DnAttr at[2] = {dn_attr_int("dims", 1), dn_attr_float("eps", eps)};
    return dn_build1(L->cx, L->g, DN_OP_LAYERNORM, 3, ops, 2, at, e->loc);
}

static DnValue *norm(Enc *t, DnValue *x, int part)
{
    return dn_tf_norm(t->L, t->e, t->name, t->s->leaf[part], x, t->s->eps);
}

static DnValue *drop(Enc *t, DnValue *x, double p)
{
    if (!x || p == 0) return x;
    DnAttr at[2] = {dn_attr_float("p", p), dn_attr_int("salt", t->L->next_salt++)};
    return op(t, DN_OP_DROPOUT, 1, &x, 2, at);
}

static DnValue *add(Enc *t, DnValue *a, DnValue *b) { return op(t, DN_OP_ADD, 2, (DnValue *[]){a, b}, 0, NULL); }

/* Checks x [N, T, d_model] and the ranges of the sizes. */
static bool check_args(Enc *t, DnValue *x)
{
    char b1[96];
    const DnTfLayer *s = t->s;
    if (x->shape.rank != 3 || x->shape.dim[2] != s->d) {
        dn_error(t->L->cx, t->e->loc, "%s: input %s must be [N, T, d_model] = [N, T, %lld]", t->e->s,
                 dn_type_str(x->dtype, &x->shape, b1, sizeof b1), (long long)s->d);
        return false;
    }
    if (s->ff < 1 || !(s->p >= 0 && s->p < 1) || !(s->p_attn >= 0 && s->p_attn < 1) || !(s->eps > 0) ||
        (strcmp(s->act, "relu") && strcmp(s->act, "gelu"))) {
        dn_error(t->L->cx, t->e->loc,
                 "%s: dim_feedforward >= 1, dropout in [0, 1), layer_norm_eps > 0 and activation \"relu\" or "
                 "\"gelu\", got %lld, %g, %g and \"%s\"",
                 t->e->s, (long long)s->ff, s->p != 0 ? s->p : s->p_attn, s->eps, s->act);
        return false;
    }
    return true;
}

/* drop(<label>.<leaf>: multihead_attention(q, kv, kv, masks)) */
static DnValue *attn_block(Enc *t, int part, DnValue *q, DnValue *kv, Val kpm, Val am, Val causal)
{
    if (!q || !kv) return NULL;
    if (t->s->cache && part == TF_SELF_ATTN)
        return drop(t,
                    dn_lower_cached_mha(t->L, t->e, sub(t, t->s->leaf[part]), q, t->s->heads, t->s->cache, t->s->pos),
                    t->s->p);
    /* multihead_attention's arguments: key, value, num_heads, key_padding_mask, attn_mask, is_causal, dropout, bias */
    Val ma[8] = {{.kind = VAL_TENSOR, .t = kv},
                 {.kind = VAL_TENSOR, .t = kv},
                 {.kind = VAL_INT, .i = t->s->heads},
                 kpm,
                 am,
                 causal,
                 {.kind = VAL_FLOAT, .f = t->s->p_attn},
                 {.kind = VAL_BOOL, .i = 1}};
    return drop(t, dn_build_mha(t->L, t->e, sub(t, t->s->leaf[part]), &q, ma), t->s->p);
}

/* drop(linear2(drop(act(linear1(x))))) */
static DnValue *ff_block(Enc *t, DnValue *x)
{
    DnAttr approx = dn_attr_str("approximate", "none");
    DnValue *f = linear(t, x, TF_LINEAR1, t->s->ff);
    f = !strcmp(t->s->act, "relu") ? op(t, DN_OP_RELU, 1, &f, 0, NULL) : op(t, DN_OP_GELU, 1, &f, 1, &approx);
    return drop(t, linear(t, drop(t, f, t->s->p), TF_LINEAR2, t->s->d), t->s->p);
}

DnValue *dn_tf_encoder_layer(Lower *L, const AstExpr *e, const char *name, DnValue *x, const DnTfLayer *s)
{
    Enc t = {L, e, name, s};
    if (!x || !check_args(&t, x)) return NULL;
    if (s->norm_first) {
        DnValue *h = norm(&t, x, TF_NORM1);
        x = add(&t, x, attn_block(&t, TF_SELF_ATTN, h, h, s->kpm, s->am, s->causal));
        return add(&t, x, ff_block(&t, norm(&t, x, TF_NORM2)));
    }
    x = norm(&t, add(&t, x, attn_block(&t, TF_SELF_ATTN, x, x, s->kpm, s->am, s->causal)), TF_NORM1);
    return norm(&t, add(&t, x, ff_block(&t, x)), TF_NORM2);
}

DnValue *dn_tf_decoder_layer(Lower *L, const AstExpr *e, const char *name, DnValue *x, DnValue *mem, const DnTfLayer *s)
{
    Enc t = {L, e, name, s};
    Val no = {.kind = VAL_BOOL, .i = 0};
    if (!x || !mem || !check_args(&t, x) || !check_args(&t, mem)) return NULL;
    if (s->norm_first) {
        DnValue *h = norm(&t, x, TF_NORM1);
        x = add(&t, x, attn_block(&t, TF_SELF_ATTN, h, h, s->kpm, s->am, s->causal));
        x = add(&t, x, attn_block(&t, TF_CROSS_ATTN, norm(&t, x, TF_NORM2), mem, s->mem_kpm, s->mem_am, no));
        return add(&t, x, ff_block(&t, norm(&t, x, TF_NORM3)));
    }
    x = norm(&t, add(&t, x, attn_block(&t, TF_SELF_ATTN, x, x, s->kpm, s->am, s->causal)), TF_NORM1);
    x = norm(&t, add(&t, x, attn_block(&t, TF_CROSS_ATTN, x, mem, s->mem_kpm, s->mem_am, no)), TF_NORM2);
    return norm(&t, add(&t, x, ff_block(&t, x)), TF_NORM3);
}

DnTfLayer dn_tf_torch_layer(int64_t d, int64_t heads, int64_t ff, double p, const char *act, double eps,
                            bool norm_first)
{
    return (DnTfLayer){.d = d,
                       .heads = heads,
                       .ff = ff,
                       .p = p,
                       .p_attn = p,
                       .act = act,
                       .eps = eps,
                       .norm_first = norm_first,
                       .leaf = {"norm1", "self_attn", "norm2", "linear1", "linear2", "multihead_attn", "norm3"},
                       .kpm = {.kind = VAL_NONE},
                       .am = {.kind = VAL_NONE},
                       .causal = {.kind = VAL_BOOL, .i = 0},
                       .mem_kpm = {.kind = VAL_NONE},
                       .mem_am = {.kind = VAL_NONE}};
}

/* The shared arguments of both rows: d_model nhead dim_feedforward dropout
 * activation layer_norm_eps norm_first. */
static DnTfLayer torch_layer(const Val *a)
{
    return dn_tf_torch_layer(a[0].i, a[1].i, a[2].i, a[3].f, a[4].s, a[5].f, a[6].i != 0);
}

DnValue *dn_build_encoder_layer(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    DnTfLayer s = torch_layer(a);
    s.kpm = a[7], s.am = a[8], s.causal = a[9];
    return dn_tf_encoder_layer(L, e, name, x[0], &s);
}

DnValue *dn_build_decoder_layer(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    DnTfLayer s = torch_layer(a);
    s.am = a[7], s.mem_am = a[8], s.kpm = a[9], s.mem_kpm = a[10], s.causal = a[11];
    return dn_tf_decoder_layer(L, e, name, x[0], x[1], &s);
}
