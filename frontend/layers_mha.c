/* layers_mha.c -- multihead_attention, as nn.MultiheadAttention(E, heads,
 * batch_first=True) computes and names it, lowered from existing ops (so
 * its gradient and kernels are theirs):
 *
 *   multihead_attention(query, key=query, value=key, num_heads,
 *                       key_padding_mask=none, attn_mask=none,
 *                       is_causal=false, dropout=0, bias=true)
 *   query [N, Tq, E], key and value [N, Tk, E]  ->  [N, Tq, E]
 *   parameters <label>.in_proj_weight [3E, E] (xavier_uniform),
 *   <label>.in_proj_bias [3E] (zeros), <label>.out_proj.weight [E, E]
 *   (U(-1/sqrt(E), 1/sqrt(E)), nn.Linear's), <label>.out_proj.bias [E]
 *   (zeros); without bias, neither bias.
 *     q, k, v = dense by the three row blocks of in_proj_weight (slices of
 *     the one parameter, so its gradient is one tensor), split into heads
 *     ([N, T, H, E/H] permuted to [N, H, T, E/H]), scaled dot-product
 *     attention per head (layers_sdpa.c), heads joined back, out_proj.
 *   Masks as PyTorch's boolean ones, given as f32 with 1 = true:
 *   key_padding_mask [N, Tk], 1 = a padding key nobody attends to;
 *   attn_mask [Tq, Tk], 1 = query i may not attend to key j.
 *
 * dn_lower_cached_mha is the same layer, the same parameters, as one
 * decoding step of causal self-attention: x [B, 1, E] projected by the
 * three row blocks, then one cached_attention op that appends this step's
 * keys and values to the cache parameters <label>.k_cache and
 * <label>.v_cache [B, S, E] (session state, DN_PARAM_CACHE) at pos and
 * attends over the rows 0..pos, then out_proj.
 */
#include "ast.h"

#include <math.h>

typedef struct Mha {
    Lower *L;
    const AstExpr *e;
    const char *name;
} Mha;

static DnValue *op(Mha *t, DnOpKind k, int n, DnValue *x, DnValue *y, DnValue *z, int nattr, const DnAttr *at)
{
    DnValue *in[3] = {x, y, z};
    for (int i = 0; i < n; i++)
        if (!in[i]) return NULL;
    return dn_build1(t->L->cx, t->L->g, k, n, in, nattr, at, t->e->loc);
}

/* Rows [r0, r0 + n) of x along axis 0. */
static DnValue *rows(Mha *t, DnValue *x, int64_t r0, int64_t n)
{
    DnAttr at[4] = {dn_attr_int("axis", 0), dn_attr_int("start", r0), dn_attr_int("stop", r0 + n),
                    dn_attr_int("step", 1)};
    return op(t, DN_OP_SLICE, 1, x, NULL, NULL, 4, at);
}

static DnValue *reshape(Mha *t, DnValue *x, int n, const int64_t *dims)
{
    DnAttr at = dn_attr_ints("shape", n, dims);
    return op(t, DN_OP_RESHAPE, 1, x, NULL, NULL, 1, &at);
}

static DnValue *swap12(Mha *t, DnValue *x)
{
    DnAttr at = dn_attr_ints("perm", 4, (int64_t[]){0, 2, 1, 3});
    return op(t, DN_OP_TRANSPOSE, 1, x, NULL, NULL, 1, &at);
}

/* The batch axis of x as a reshape target: -1 for N, else its static size. */
static int64_t lead(const DnValue *x) { return x->shape.dim[0] == DN_DIM_N ? -1 : x->shape.dim[0]; }

/* x [N, T, E] times block 'blk' of the packed projection, as [N, H, T, E/H]. */
static DnValue *project(Mha *t, DnValue *x, DnValue *w, DnValue *b, int blk, int64_t E, int64_t H)
{
    int64_t T = x->shape.dim[1];
    DnValue *y = b ? op(t, DN_OP_DENSE, 3, x, rows(t, w, blk * E, E), rows(t, b, blk * E, E), 0, NULL)
                   : op(t, DN_OP_DENSE, 2, x, rows(t, w, blk * E, E), NULL, 0, NULL);
    return y ? swap12(t, reshape(t, y, 4, (int64_t[]){lead(x), T, H, E / H})) : NULL;
}

/* 1 - m (f32), reshaped to 'n' dims: a PyTorch-style "true = masked" into a keep mask. */
static DnValue *keep_of(Mha *t, DnValue *m, int n, const int64_t *dims)
{
    DnAttr neg = dn_attr_float("alpha", -1.0);
    DnAttr one[2] = {dn_attr_float("value", 1.0), dn_attr_ints("shape", 0, NULL)};
    DnValue *k = op(t, DN_OP_ADD, 2, op(t, DN_OP_SCALE, 1, m, NULL, NULL, 1, &neg),
                    dn_build1(t->L->cx, t->L->g, DN_OP_FILL, 0, NULL, 2, one, t->e->loc), NULL, 0, NULL);
    return n ? reshape(t, k, n, dims) : k;
}

static bool check(Mha *t, DnValue *q, DnValue *k, DnValue *v, int64_t H, DnValue *kpm, DnValue *am)
{
    char b1[96], b2[96], b3[96];
    Lower *L = t->L;
    const DnShape *qs = &q->shape, *ks = &k->shape, *vs = &v->shape;
    bool ok = qs->rank == 3 && ks->rank == 3 && vs->rank == 3 && qs->dim[0] == ks->dim[0] && ks->dim[0] == vs->dim[0] &&
              qs->dim[2] == ks->dim[2] && ks->dim[2] == vs->dim[2] && ks->dim[1] == vs->dim[1] && qs->dim[1] >= 1 &&
              ks->dim[1] >= 1 && qs->dim[2] >= 1;
    if (!ok) {
        dn_error(L->cx, t->e->loc,
                 "multihead_attention: query %s, key %s and value %s must be [N, Tq, E], [N, Tk, E] and [N, Tk, E] "
                 "(batch first, one embedding size E, static sizes after N)",
                 dn_type_str(q->dtype, qs, b1, 96), dn_type_str(k->dtype, ks, b2, 96),
                 dn_type_str(v->dtype, vs, b3, 96));
        return false;
    }
    if (H < 1 || qs->dim[2] % H) {
        dn_error(L->cx, t->e->loc, "multihead_attention: num_heads %lld must divide the embedding size %lld",
                 (long long)H, (long long)qs->dim[2]);
        return false;
    }
    if (kpm && (kpm->dtype != DN_DTYPE_F32 || kpm->shape.rank != 2 || kpm->shape.dim[0] != ks->dim[0] ||
                kpm->shape.dim[1] != ks->dim[1])) {
        dn_error(L->cx, t->e->loc, "multihead_attention: key_padding_mask %s must be f32 [N, Tk] = [N, %lld] (1 = pad)",
                 dn_type_str(kpm->dtype, &kpm->shape, b1, 96), (long long)ks->dim[1]);
        return false;
    }
    if (am && (am->dtype != DN_DTYPE_F32 || am->shape.rank != 2 || am->shape.dim[0] != qs->dim[1] ||
               am->shape.dim[1] != ks->dim[1])) {
        dn_error(L->cx, t->e->loc,
                 "multihead_attention: attn_mask %s must be f32 [Tq, Tk] = [%lld, %lld] (1 = may not attend)",
                 dn_type_str(am->dtype, &am->shape, b1, 96), (long long)qs->dim[1], (long long)ks->dim[1]);
        return false;
    }
    return true;
}

/* nn.MultiheadAttention's parameters for embedding size E: in_proj_weight,
 * in_proj_bias, out_proj.weight, out_proj.bias (no biases without 'bias');
 * false after a diagnostic. */
static bool mha_params(Mha *t, int64_t E, bool bias, DnValue **w, DnValue **b, DnValue **ow, DnValue **ob)
{
    Lower *L = t->L;
    double xavier = sqrt(6.0 / (double)(E + 3 * E));
    DnInit zeros = {.kind = DN_INIT_ZEROS};
    *w = dn_layer_param(L, t->name, "in_proj_weight", 2, (int64_t[]){3 * E, E},
                        (DnInit){.kind = DN_INIT_UNIFORM, .a = -xavier, .b = xavier}, t->e->loc);
    *b = bias ? dn_layer_param(L, t->name, "in_proj_bias", 1, (int64_t[]){3 * E}, zeros, t->e->loc) : NULL;
    *ow = dn_layer_param(L, t->name, "out_proj.weight", 2, (int64_t[]){E, E}, dn_layer_kaiming((double)E), t->e->loc);
    *ob = bias ? dn_layer_param(L, t->name, "out_proj.bias", 1, (int64_t[]){E}, zeros, t->e->loc) : NULL;
    return *w && *ow && (!bias || (*b && *ob));
}

static DnValue *out_proj(Mha *t, DnValue *o, DnValue *ow, DnValue *ob)
{
    return ob ? op(t, DN_OP_DENSE, 3, o, ow, ob, 0, NULL) : op(t, DN_OP_DENSE, 2, o, ow, NULL, 0, NULL);
}

DnValue *dn_lower_cached_mha(Lower *L, const AstExpr *e, const char *name, DnValue *x, int64_t H, int64_t S,
                             DnValue *pos)
{
    Mha t = {L, e, name};
    char b1[96], b2[96];
    const DnShape *s = &x->shape;
    if (s->rank != 3 || s->dim[0] < 1 || s->dim[1] != 1 || s->dim[2] < 1 || pos->dtype != DN_DTYPE_I32 ||
        pos->shape.rank != 2 || pos->shape.dim[0] != s->dim[0] || pos->shape.dim[1] != 1) {
        dn_error(L->cx, e->loc,
                 "%s: a step with a KV cache takes x [B, 1, E] and pos i32 [B, 1] with a static batch B (the cache "
                 "holds a row per item: declare the step's inputs as i32[1, 1]), got x %s and pos %s",
                 e->s, dn_type_str(x->dtype, s, b1, 96), dn_type_str(pos->dtype, &pos->shape, b2, 96));
        return NULL;
    }
    int64_t B = s->dim[0], E = s->dim[2];
    if (H < 1 || E % H) {
        dn_error(L->cx, e->loc, "multihead_attention: num_heads %lld must divide the embedding size %lld", (long long)H,
                 (long long)E);
        return NULL;
    }
    DnValue *w, *b, *ow, *ob;
    if (!mha_params(&t, E, true, &w, &b, &ow, &ob)) return NULL;
    DnValue *qkv[3];
    for (int i = 0; i < 3; i++)
        qkv[i] = op(&t, DN_OP_DENSE, 3, x, rows(&t, w, i * E, E), rows(&t, b, i * E, E), 0, NULL);
    DnInit zeros = {.kind = DN_INIT_ZEROS};
    DnShape cs = {3, {B, S, E}};
    if (!dn_lower_check_size(L, DN_DTYPE_F32, &cs, e->loc, dn_arena_printf(L->a, "%s.k_cache", name))) return NULL;
    DnValue *in[6] = {qkv[0],
                      qkv[1],
                      qkv[2],
                      dn_lower_add_param(L, dn_arena_printf(L->a, "%s.k_cache", name), DN_PARAM_CACHE, DN_DTYPE_F32,
                                         &cs, zeros, e->loc)
                          ->value,
                      dn_lower_add_param(L, dn_arena_printf(L->a, "%s.v_cache", name), DN_PARAM_CACHE, DN_DTYPE_F32,
                                         &cs, zeros, e->loc)
                          ->value,
                      pos};
    for (int i = 0; i < 3; i++)
        if (!in[i]) return NULL;
    DnAttr at[2] = {dn_attr_int("heads", H), dn_attr_float("scale", 1.0 / sqrt((double)(E / H)))};
    return out_proj(&t, dn_build1(L->cx, L->g, DN_OP_CACHED_ATTENTION, 6, in, 2, at, e->loc), ow, ob);
}

DnValue *dn_build_mha(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    Mha t = {L, e, name};
    DnValue *q = x[0], *k = a[0].kind == VAL_TENSOR ? a[0].t : q, *v = a[1].kind == VAL_TENSOR ? a[1].t : k;
    DnValue *kpm = a[3].kind == VAL_TENSOR ? a[3].t : NULL, *am = a[4].kind == VAL_TENSOR ? a[4].t : NULL;
    int64_t H = a[2].i;
    bool bias = a[7].i != 0;
    if (!check(&t, q, k, v, H, kpm, am)) return NULL;
    int64_t E = q->shape.dim[2], Tq = q->shape.dim[1], Tk = k->shape.dim[1];
    DnValue *w, *b, *ow, *ob;
    if (!mha_params(&t, E, bias, &w, &b, &ow, &ob)) return NULL;
    DnValue *qh = project(&t, q, w, b, 0, E, H), *kh = project(&t, k, w, b, 1, E, H),
            *vh = project(&t, v, w, b, 2, E, H);
    DnValue *keep = kpm ? keep_of(&t, kpm, 4, (int64_t[]){lead(kpm), 1, 1, Tk}) : NULL;
    if (am) {
        DnValue *ka = keep_of(&t, am, 0, NULL);
        keep = keep ? op(&t, DN_OP_MUL, 2, keep, ka, NULL, 0, NULL) : ka;
    }
    DnValue *o = dn_lower_sdpa(L, e, qh, kh, vh, keep, a[5].i != 0, a[6].f, 0);
    o = o ? reshape(&t, swap12(&t, o), 3, (int64_t[]){lead(q), Tq, E}) : NULL;
    return out_proj(&t, o, ow, ob);
}
