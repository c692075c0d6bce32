/* layers_rnn.c -- the recurrent layers rnn, lstm and gru (nn.RNN, nn.LSTM,
 * nn.GRU), rows of the layer table in layers.c.
 *
 * x [N, T, in] (batch_first) or, with batch_first=false, [T, B, in] for a
 * fixed batch B (transposed to [B, T, in] and back: the batch axis N can
 * only be first).  Each layer k and direction is one input projection (a
 * dense over all steps: weight_ih_l<k>, bias_ih_l<k>) and one rnn_scan
 * (weight_hh_l<k>, bias_hh_l<k>, or a zero fill without bias); the
 * _reverse direction is a scan with reverse=1, concatenated after the
 * forward one on the last axis.  dropout (training only) sits between
 * layers, not after the last, as PyTorch's.  lengths (i32 [N]) becomes a
 * sequence_mask that every scan reads.  States are [N, layers*dirs, H]
 * (PyTorch's h_0 / h_n with their first two axes swapped, so that N comes
 * first); without h0 (c0) they start at zero.  The result is the output
 * sequence [N, T, dirs*H], or with return_state the list [output, h_n]
 * (lstm: [output, h_n, c_n]).
 */
#include "../ir/rnn_cell.h"
#include "ast.h"

#include <math.h>

enum { RNN_MAX_LAYERS = 64, RNN_MAX_HIDDEN = 1 << 20, CHAIN = 8 /* the concat op's operand limit */ };

typedef struct RnnArgs {
    int64_t hidden, layers;
    bool bias, batch_first, bidir, ret;
    double dropout;
    const char *cell; /* the rnn_scan cell, NULL for an unknown nonlinearity */
    const char *nonlin;
    DnValue *h0, *c0, *lengths;
} RnnArgs;

/* The bound arguments of the row's schema (layers.c) by name. */
static RnnArgs rnn_args(const AstExpr *e, const Val *a)
{
    RnnArgs r = {a[0].i, a[1].i, a[2].i != 0, a[3].i != 0, a[5].i != 0, false, a[4].f, NULL, NULL, NULL, NULL, NULL};
    int at = 6;
    if (!strcmp(e->s, "rnn")) {
        r.nonlin = a[at].s;
        r.cell = !strcmp(a[at].s, "tanh") ? "rnn_tanh" : !strcmp(a[at].s, "relu") ? "rnn_relu" : NULL;
        at++;
    } else
        r.cell = e->s; /* lstm, gru */
    r.h0 = a[at].kind == VAL_TENSOR ? a[at].t : NULL;
    at++;
    if (!strcmp(e->s, "lstm")) {
        r.c0 = a[at].kind == VAL_TENSOR ? a[at].t : NULL;
        at++;
    }
    r.lengths = a[at].kind == VAL_TENSOR ? a[at].t : NULL;
    r.ret = a[at + 1].i != 0;
    return r;
}

static char *tstr(const DnValue *v, char *buf) { return dn_type_str(v->dtype, &v->shape, buf, 96); }

static DnValue *op1(Lower *L, const AstExpr *e, DnOpKind k, int nin, DnValue **in, int nat, const DnAttr *at)
{
    return dn_build1(L->cx, L->g, k, nin, in, nat, at, e->loc);
}

/* 'x' reshaped to 'rank' dims 'd' (DN_DIM_N written as -1) */
static DnValue *reshape_to(Lower *L, const AstExpr *e, DnValue *x, int rank, const int64_t *d)
{
    int64_t dims[DN_MAX_RANK];
    for (int i = 0; i < rank; i++) dims[i] = d[i] == DN_DIM_N ? -1 : d[i];
    DnAttr at = dn_attr_ints("shape", rank, dims);
    return x ? op1(L, e, DN_OP_RESHAPE, 1, &x, 1, &at) : NULL;
}

static DnValue *swap01(Lower *L, const AstExpr *e, DnValue *x)
{
    DnAttr at = dn_attr_ints("perm", 3, (int64_t[]){1, 0, 2});
    return x ? op1(L, e, DN_OP_TRANSPOSE, 1, &x, 1, &at) : NULL;
}

static DnValue *zeros(Lower *L, const AstExpr *e, int rank, const int64_t *d)
{
    int64_t dims[DN_MAX_RANK];
    for (int i = 0; i < rank; i++) dims[i] = d[i] == DN_DIM_N ? -1 : d[i];
    DnAttr at[2] = {dn_attr_float("value", 0.0), dn_attr_ints("shape", rank, dims)};
    return op1(L, e, DN_OP_FILL, 0, NULL, 2, at);
}

/* cat of 'n' tensors along 'axis', chained in concat ops of at most 8 */
static DnValue *cat(Lower *L, const AstExpr *e, DnValue **t, int n, int64_t axis)
{
    DnValue *acc = t[0];
    DnAttr at = dn_attr_int("axis", axis);
    for (int i = 1; i < n && acc;) {
        DnValue *in[CHAIN] = {acc};
        int k = 1;
        while (k < CHAIN && i < n) in[k++] = t[i++];
        for (int j = 0; j < k; j++)
            if (!in[j]) return NULL;
        acc = op1(L, e, DN_OP_CONCAT, k, in, 1, &at);
    }
    return acc;
}

/* Checks a state argument: f32 [batch, layers*dirs, H]. */
static bool check_state(Lower *L, const AstExpr *e, const char *what, const DnValue *s, int64_t batch, int64_t ld,
                        int64_t H)
{
    DnShape want = dn_shape_make(3, (int64_t[]){batch, ld, H});
    if (s->dtype == DN_DTYPE_F32 && dn_shape_eq(&s->shape, &want)) return true;
    char b1[96], b2[96];
    dn_error(L->cx, e->loc, "%s: %s must be %s ([batch, num_layers*directions, hidden], batch first), got %s", e->s,
             what, dn_type_str(DN_DTYPE_F32, &want, b1, 96), tstr(s, b2));
    return false;
}

/* The arguments' own checks; false after a diagnostic. */
static bool check_args(Lower *L, const AstExpr *e, const RnnArgs *r, const DnValue *x)
{
    char buf[96];
    if (x->dtype != DN_DTYPE_F32 || x->shape.rank != 3 || x->shape.dim[1] == DN_DIM_N || x->shape.dim[2] == DN_DIM_N) {
        dn_error(L->cx, e->loc, "%s expects a 3-d f32 input [N, T, features] (T and features static), got %s", e->s,
                 tstr(x, buf));
        return false;
    }
    if (!r->batch_first && x->shape.dim[0] == DN_DIM_N) {
        dn_error(L->cx, e->loc,
                 "%s: batch_first=false needs an input [T, batch, features] of a fixed batch, but %s has the batch "
                 "axis N, which is always first",
                 e->s, tstr(x, buf));
        return false;
    }
    if (r->hidden < 1 || r->hidden > RNN_MAX_HIDDEN) {
        dn_error(L->cx, e->loc, "%s: hidden must be between 1 and %d, got %lld", e->s, RNN_MAX_HIDDEN,
                 (long long)r->hidden);
        return false;
    }
    if (r->layers < 1 || r->layers > RNN_MAX_LAYERS) {
        dn_error(L->cx, e->loc, "%s: num_layers must be between 1 and %d, got %lld", e->s, RNN_MAX_LAYERS,
                 (long long)r->layers);
        return false;
    }
    if (!(r->dropout >= 0 && r->dropout < 1)) {
        dn_error(L->cx, e->loc, "%s: dropout must be in [0, 1), got %g", e->s, r->dropout);
        return false;
    }
    if (!r->cell) {
        dn_error(L->cx, e->loc, "rnn: nonlinearity must be \"tanh\" or \"relu\", got \"%s\"", r->nonlin);
        return false;
    }
    if (!strcmp(e->s, "lstm") && !r->h0 != !r->c0) {
        dn_error(L->cx, e->loc, "lstm: give both h0 and c0, or neither (the states then start at zero)");
        return false;
    }
    return true;
}

/* The sequence_mask of 'lengths' for 'batch' items of T steps, after checking it is i32 [batch]. */
static DnValue *lengths_mask(Lower *L, const AstExpr *e, DnValue *len, int64_t batch, int64_t T)
{
    DnShape want = dn_shape_make(1, (int64_t[]){batch});
    if (len->dtype != DN_DTYPE_I32 || !dn_shape_eq(&len->shape, &want)) {
        char b1[96], b2[96];
        dn_error(L->cx, e->loc, "%s: lengths must be %s (one length per batch item), got %s", e->s,
                 dn_type_str(DN_DTYPE_I32, &want, b1, 96), tstr(len, b2));
        return NULL;
    }
    DnAttr at = dn_attr_int("max_len", T);
    return op1(L, e, DN_OP_SEQUENCE_MASK, 1, &len, 1, &at);
}

/* State k of 'st' [batch, layers*dirs, H] as [batch, H] */
static DnValue *state_k(Lower *L, const AstExpr *e, DnValue *st, int64_t k, int64_t batch, int64_t H)
{
    return reshape_to(L, e, dn_lower_slice(L, st, 1, k, k + 1, 1, e->loc), 2, (int64_t[]){batch, H});
}

Val dn_build_rnn(Lower *L, const AstExpr *e, const char *name, DnValue **xs, const Val *a)
{
    RnnArgs r = rnn_args(e, a);
    DnValue *x = xs[0];
    if (!check_args(L, e, &r, x)) return dn_val_poison();
    if (!r.batch_first) x = swap01(L, e, x);
    if (!x) return dn_val_poison();
    const DnRnnCellInfo *cell = dn_rnn_cell(r.cell);
    int64_t batch = x->shape.dim[0], T = x->shape.dim[1], H = r.hidden, G = cell->gates, GH = G * H;
    int64_t dirs = r.bidir ? 2 : 1, LD = r.layers * dirs;
    if ((r.h0 && !check_state(L, e, "h0", r.h0, batch, LD, H)) ||
        (r.c0 && !check_state(L, e, "c0", r.c0, batch, LD, H)))
        return dn_val_poison();
    DnValue *mask = r.lengths ? lengths_mask(L, e, r.lengths, batch, T) : NULL;
    if (r.lengths && !mask) return dn_val_poison();
    DnInit init = {.kind = DN_INIT_UNIFORM, .a = -1.0 / sqrt((double)H), .b = 1.0 / sqrt((double)H)};
    DnValue **hn = dn_arena_alloc(L->a, (size_t)LD * sizeof *hn), **cn = dn_arena_alloc(L->a, (size_t)LD * sizeof *cn);
    for (int64_t l = 0; l < r.layers; l++) {
        int64_t in = x->shape.dim[2];
        DnValue *ys[2];
        for (int64_t d = 0; d < dirs; d++) {
            const char *sfx = dn_arena_printf(L->a, "l%lld%s", (long long)l, d ? "_reverse" : "");
            DnValue *wih = dn_layer_param(L, name, dn_arena_printf(L->a, "weight_ih_%s", sfx), 2, (int64_t[]){GH, in},
                                          init, e->loc);
            DnValue *whh = dn_layer_param(L, name, dn_arena_printf(L->a, "weight_hh_%s", sfx), 2, (int64_t[]){GH, H},
                                          init, e->loc);
            DnValue *bih = NULL, *bhh = NULL;
            if (r.bias) {
                bih = dn_layer_param(L, name, dn_arena_printf(L->a, "bias_ih_%s", sfx), 1, &GH, init, e->loc);
                bhh = dn_layer_param(L, name, dn_arena_printf(L->a, "bias_hh_%s", sfx), 1, &GH, init, e->loc);
                if (!bih || !bhh) return dn_val_poison();
            } else
                bhh = zeros(L, e, 1, &GH);
            if (!wih || !whh) return dn_val_poison();
            DnValue *din[3] = {x, wih, bih};
            DnValue *xg = op1(L, e, DN_OP_DENSE, r.bias ? 3 : 2, din, 0, NULL);
            int64_t k = l * dirs + d;
            DnValue *s0 = r.h0 ? state_k(L, e, r.h0, k, batch, H) : zeros(L, e, 2, (int64_t[]){batch, cell->state * H});
            if (r.h0 && cell->state == 2) s0 = cat(L, e, (DnValue *[]){s0, state_k(L, e, r.c0, k, batch, H)}, 2, 1);
            DnValue *in5[5] = {xg, whh, bhh, s0, mask};
            DnAttr at[2] = {dn_attr_str("cell", r.cell), dn_attr_int("reverse", d)};
            bool ok = true;
            for (int i = 0; i < 4; i++) ok &= in5[i] != NULL;
            DnOp *scan = ok ? dn_build(L->cx, L->g, DN_OP_RNN_SCAN, mask ? 5 : 4, in5, 2, at, e->loc) : NULL;
            if (!scan || !dn_lower_op_budget(L, e->loc)) return dn_val_poison();
            ys[d] = scan->out[0];
            DnValue *sT = scan->out[1];
            if (!r.ret) continue;
            hn[k] = reshape_to(L, e, dn_lower_slice(L, sT, 1, 0, H, 1, e->loc), 3, (int64_t[]){batch, 1, H});
            if (cell->state == 2)
                cn[k] = reshape_to(L, e, dn_lower_slice(L, sT, 1, H, 2 * H, 1, e->loc), 3, (int64_t[]){batch, 1, H});
        }
        x = dirs == 2 ? cat(L, e, ys, 2, 2) : ys[0];
        if (x && r.dropout > 0 && l + 1 < r.layers) {
            DnAttr at[] = {dn_attr_float("p", r.dropout), dn_attr_int("salt", L->next_salt++)};
            x = op1(L, e, DN_OP_DROPOUT, 1, &x, 2, at);
        }
        if (!x) return dn_val_poison();
    }
    if (!r.batch_first) x = swap01(L, e, x);
    if (!x) return dn_val_poison();
    if (!r.ret) return (Val){.kind = VAL_TENSOR, .t = x};
    int n = cell->state == 2 ? 3 : 2;
    Val v = {.kind = VAL_LIST, .n = n, .items = dn_arena_alloc(L->a, (size_t)n * sizeof(Val))};
    DnValue *res[3] = {x, cat(L, e, hn, (int)LD, 1), n == 3 ? cat(L, e, cn, (int)LD, 1) : NULL};
    for (int i = 0; i < n; i++) {
        if (!res[i]) return dn_val_poison();
        v.items[i] = (Val){.kind = VAL_TENSOR, .t = res[i]};
    }
    return v;
}
