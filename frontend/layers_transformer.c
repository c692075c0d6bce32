/* layers_transformer.c -- the layers made of stacks of transformer layers
 * (layers_encoder.c builds each one), under the names their PyTorch
 * modules give their parameters:
 *
 *   transformer(src, tgt, d_model=512, nhead=8, num_encoder_layers=6,
 *       num_decoder_layers=6, dim_feedforward=2048, dropout=0.1,
 *       activation="relu", layer_norm_eps=1e-5, norm_first=false,
 *       src_mask, tgt_mask, memory_mask, src_key_padding_mask,
 *       tgt_key_padding_mask, memory_key_padding_mask (each none),
 *       src_is_causal=false, tgt_is_causal=false)
 *   nn.Transformer(batch_first=True): src [N, S, d], tgt [N, T, d] ->
 *   [N, T, d]; memory = encoder.norm(encoder layers over src), then the
 *   decoder layers over tgt and memory, then decoder.norm.  Parameters
 *   encoder.layers.<i>.* (transformer_encoder_layer's), encoder.norm.*,
 *   decoder.layers.<i>.* (transformer_decoder_layer's), decoder.norm.*.
 *
 *   transformer_encoder(num_layers, d_model, nhead, dim_feedforward=2048,
 *       dropout=0.1, activation="relu", layer_norm_eps=1e-5,
 *       norm_first=false, norm=true, mask=none, src_key_padding_mask=none,
 *       is_causal=false, cache=0, pos=none)
 *   nn.TransformerEncoder(layer, num_layers, norm=LayerNorm(d_model) or
 *   None): x [N, T, d] -> [N, T, d]; parameters layers.<i>.* (the encoder
 *   layer's), norm.* (with norm=true).  nn.Transformer's encoder half.
 *   With cache=S and pos (i32 [B, 1]) it is one decoding step of the same
 *   causal layers, the same parameters: x [B, 1, d] at positions pos, each
 *   self-attention over a KV cache of S rows in the session
 *   (dn_lower_cached_mha), so a language model trained with is_causal=true
 *   generates one token a step in O(t).
 *
 *   vit_encoder_block(num_heads, hidden_dim, mlp_dim, dropout=0,
 *       attention_dropout=0, layer_norm_eps=1e-6)
 *   torchvision's EncoderBlock: x [N, S, hidden_dim] ->
 *     x = x + drop(self_attention(ln_1(x)))      (attention_dropout on its weights)
 *     x = x + mlp(ln_2(x)),  mlp = mlp.3(drop(gelu(mlp.0(x)))) then drop
 *   a pre-norm encoder layer with exact gelu; parameters ln_1.*,
 *   self_attention.* (nn.MultiheadAttention's), ln_2.*, mlp.0.*, mlp.3.*,
 *   the linear weights xavier-uniform and biases N(0, 1e-6) as torchvision
 *   initialises them.
 *
 *   vit_encoder(num_layers, num_heads, hidden_dim, mlp_dim, dropout=0,
 *       attention_dropout=0, layer_norm_eps=1e-6)
 *   torchvision's Encoder: x [N, S, hidden_dim] (S static: the patches and
 *   the class token) -> x + pos_embedding [1, S, hidden_dim] (N(0, 0.02)),
 *   drop, the blocks layers.encoder_layer_<i>, then ln.
 */
#include "ast.h"

static bool check_count(Lower *L, const AstExpr *e, const char *what, int64_t n)
{
    if (n >= 1 && n <= 1000) return true;
    dn_error(L->cx, e->loc, "%s: %s must be in 1..1000, got %lld", e->s, what, (long long)n);
    return false;
}

/* 'n' encoder layers <name>.layers.<i> over x, then, unless norm is NULL,
 * nn.LayerNorm <name>.<norm> (nn.TransformerEncoder). */
static DnValue *encoder_stack(Lower *L, const AstExpr *e, const char *name, DnValue *x, const DnTfLayer *s, int64_t n,
                              const char *norm)
{
    for (int64_t i = 0; i < n && x; i++)
        x = dn_tf_encoder_layer(L, e, dn_arena_printf(L->a, "%s.layers.%lld", name, (long long)i), x, s);
    return norm ? dn_tf_norm(L, e, name, norm, x, s->eps) : x;
}

/* cache=S of a decoding step: 1..2^24 rows, pos given, the layers causal
 * and without masks (mask, src_key_padding_mask, is_causal at m[0..2]). */
static bool check_cache(Lower *L, const AstExpr *e, const Val *m, int64_t S, Val pos)
{
    const char *why = S < 1 || S > (1 << 24)   ? "cache must be in 1..16777216 (the rows the step can attend to)"
                      : pos.kind != VAL_TENSOR ? "cache needs pos, the step's positions (i32 [B, 1])"
                      : !m[2].i                ? "cache needs is_causal=true: a decoding step attends to the past"
                      : m[0].kind == VAL_TENSOR || m[1].kind == VAL_TENSOR
                          ? "cache takes no mask: attending to the positions so far is its mask"
                          : NULL;
    if (why) dn_error(L->cx, e->loc, "%s: %s", e->s, why);
    return !why;
}

DnValue *dn_build_transformer_encoder(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    DnTfLayer s = dn_tf_torch_layer(a[1].i, a[2].i, a[3].i, a[4].f, a[5].s, a[6].f, a[7].i != 0);
    s.am = a[9], s.kpm = a[10], s.causal = a[11];
    if (!check_count(L, e, "num_layers", a[0].i)) return NULL;
    if (a[12].i != 0 && !check_cache(L, e, a + 9, a[12].i, a[13])) return NULL;
    if (a[12].i == 0 && a[13].kind == VAL_TENSOR) {
        dn_error(L->cx, e->loc, "%s: pos is a decoding step's position: it needs cache=S", e->s);
        return NULL;
    }
    s.cache = a[12].i;
    s.pos = a[13].kind == VAL_TENSOR ? a[13].t : NULL;
    return encoder_stack(L, e, name, x[0], &s, a[0].i, a[8].i ? "norm" : NULL);
}

DnValue *dn_build_transformer(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    DnTfLayer s = dn_tf_torch_layer(a[0].i, a[1].i, a[4].i, a[5].f, a[6].s, a[7].f, a[8].i != 0);
    if (!check_count(L, e, "num_encoder_layers", a[2].i) || !check_count(L, e, "num_decoder_layers", a[3].i))
        return NULL;
    /* the encoder: src_mask, src_key_padding_mask, src_is_causal */
    s.am = a[9], s.kpm = a[12], s.causal = a[15];
    DnValue *mem = encoder_stack(L, e, dn_arena_printf(L->a, "%s.encoder", name), x[0], &s, a[2].i, "norm");
    /* the decoder: tgt_mask, tgt_key_padding_mask, tgt_is_causal; memory_mask, memory_key_padding_mask */
    s.am = a[10], s.kpm = a[13], s.causal = a[16], s.mem_am = a[11], s.mem_kpm = a[14];
    DnValue *y = x[1];
    for (int64_t i = 0; i < a[3].i && y && mem; i++)
        y = dn_tf_decoder_layer(L, e, dn_arena_printf(L->a, "%s.decoder.layers.%lld", name, (long long)i), y, mem, &s);
    return mem ? dn_tf_norm(L, e, name, "decoder.norm", y, s.eps) : NULL;
}

/* torchvision's EncoderBlock from num_heads hidden_dim mlp_dim dropout
 * attention_dropout layer_norm_eps at a[0..5]. */
static DnTfLayer vit_block(const Val *a)
{
    return (DnTfLayer){.heads = a[0].i,
                       .d = a[1].i,
                       .ff = a[2].i,
                       .p = a[3].f,
                       .p_attn = a[4].f,
                       .eps = a[5].f,
                       .act = "gelu",
                       .norm_first = true,
                       .vit_init = true,
                       .leaf = {"ln_1", "self_attention", "ln_2", "mlp.0", "mlp.3"},
                       .kpm = {.kind = VAL_NONE},
                       .am = {.kind = VAL_NONE},
                       .causal = {.kind = VAL_BOOL, .i = 0}};
}

DnValue *dn_build_vit_block(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    DnTfLayer s = vit_block(a);
    return dn_tf_encoder_layer(L, e, name, x[0], &s);
}

DnValue *dn_build_vit_encoder(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    DnTfLayer s = vit_block(a + 1);
    DnValue *y = x[0];
    char ty[96];
    if (y->shape.rank != 3 || y->shape.dim[1] < 1 || y->shape.dim[2] != s.d) {
        dn_error(L->cx, e->loc,
                 "%s: input %s must be [N, S, hidden_dim] = [N, S, %lld] with a static S (the patches and the class "
                 "token)",
                 e->s, dn_type_str(y->dtype, &y->shape, ty, sizeof ty), (long long)s.d);
        return NULL;
    }
    if (!check_count(L, e, "num_layers", a[0].i)) return NULL;
    int64_t pd[3] = {1, y->shape.dim[1], s.d};
    DnValue *pos =
        dn_layer_param(L, name, "pos_embedding", 3, pd, (DnInit){.kind = DN_INIT_NORMAL, .a = 0, .b = 0.02}, e->loc);
    if (!pos) return NULL;
    y = dn_build1(L->cx, L->g, DN_OP_ADD, 2, (DnValue *[]){y, pos}, 0, NULL, e->loc);
    if (y && s.p > 0) {
        DnAttr at[2] = {dn_attr_float("p", s.p), dn_attr_int("salt", L->next_salt++)};
        y = dn_build1(L->cx, L->g, DN_OP_DROPOUT, 1, &y, 2, at, e->loc);
    }
    for (int64_t i = 0; i < a[0].i && y; i++)
        y = dn_tf_encoder_layer(L, e, dn_arena_printf(L->a, "%s.layers.encoder_layer_%lld", name, (long long)i), y, &s);
    return dn_tf_norm(L, e, name, "ln", y, s.eps);
}
