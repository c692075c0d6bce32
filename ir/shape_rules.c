/* shape_rules.c -- one shape rule per op kind: result dtypes and shapes
 * from operand types and (completed) attributes, with the checks that make
 * an op well-formed.
 *
 * Called by the builder (dn_build, before an op is appended) and by the
 * verifier (to re-derive recorded shapes).  Every failure is a user
 * diagnostic at the op's location naming the op and the offending types:
 *     conv2d expects a 4-d input, got f32[N, 784]
 * The rule table is generated from ops.def, so a missing rule does not
 * compile.
 */
#include <math.h>

#include "ir.h"
#include "rnn_cell.h"

typedef struct Rule {
    DnCtx *cx;
    const DnOp *op;
    DnDType dt[DN_MAX_OUTS]; /* results, filled by the rule */
    DnShape sh[DN_MAX_OUTS];
} Rule;

#define RULE(nm) static bool shape_##nm(Rule *r)
#define IN(i)    (r->op->in[i])
#define OPN      (dn_op_info[r->op->kind].name)
/* A type string in a temporary buffer that lives until the end of the statement's block. */
#define TY(v)      dn_type_str((v)->dtype, &(v)->shape, (char[96]){0}, 96)
#define TYS(t, s)  dn_type_str((t), (s), (char[96]){0}, 96)
#define INTS(v, n) ints_str((v), (n), (char[96]){0}, 96)

static bool fail(Rule *r, const char *fmt, ...) DN_PRINTF(2, 3);
static bool fail(Rule *r, const char *fmt, ...)
{
    DnLoc loc = r->op->loc; /* the diagnostic may outlive the graph: copy the file name */
    if (loc.file) loc.file = dn_arena_strdup(&r->cx->arena, loc.file);
    va_list ap;
    va_start(ap, fmt);
    dn_verror(r->cx, loc, fmt, ap);
    va_end(ap);
    return false;
}

static char *ints_str(const int64_t *v, int n, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < n && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%lld", i ? ", " : "", (long long)v[i]);
    if (at < len) snprintf(buf + at, len - at, "]");
    return buf;
}

static const int64_t *pair(Rule *r, const char *name) { return dn_op_ints(r->op, name, NULL); }

/* Operand 'i' must be f32 with rank 'rank' (-1: any, -2: at least 2). */
static bool want(Rule *r, int i, int rank, const char *what)
{
    const DnValue *v = IN(i);
    if (rank >= 0 && v->shape.rank != rank) return fail(r, "%s expects a %d-d %s, got %s", OPN, rank, what, TY(v));
    if (rank == -2 && v->shape.rank < 2) return fail(r, "%s expects a %s of rank >= 2, got %s", OPN, what, TY(v));
    if (v->dtype != DN_DTYPE_F32) return fail(r, "%s expects an f32 %s, got %s", OPN, what, TY(v));
    return true;
}

/* Result 0 has operand i's type. */
static bool like(Rule *r, int i)
{
    r->dt[0] = IN(i)->dtype;
    r->sh[0] = IN(i)->shape;
    return true;
}

/* Operands i and j have equal types. */
static bool same(Rule *r, int i, int j)
{
    if (IN(i)->dtype != IN(j)->dtype || !dn_shape_eq(&IN(i)->shape, &IN(j)->shape))
        return fail(r, "%s: operand types %s and %s differ", OPN, TY(IN(i)), TY(IN(j)));
    return true;
}

/* A sequence axis DN_DIM_SEQ(bound) with 1 <= bound <= DN_MAX_SEQ_BOUND. */
static bool seq_dim_ok(int64_t d)
{
    return DN_DIM_IS_SEQ(d) && DN_SEQ_BOUND(d) >= 1 && DN_SEQ_BOUND(d) <= DN_MAX_SEQ_BOUND;
}

/* A 'shape' attribute as a shape: -1 (N) in axis 0 only, a sequence axis T
   only in axis 1 after N, other dims >= 1. */
static bool attr_shape(Rule *r, const char *name, DnShape *s)
{
    int n;
    const int64_t *v = dn_op_ints(r->op, name, &n);
    if (n > DN_MAX_RANK) return fail(r, "%s: %s %s has more than %d axes", OPN, name, INTS(v, n), DN_MAX_RANK);
    for (int i = 0; i < n; i++)
        if (v[i] < 1 && !(i == 0 && v[i] == -1) && !(i == 1 && v[0] == -1 && seq_dim_ok(v[1])))
            return fail(r,
                        "%s: %s %s may hold -1 (N) only in axis 0, T only in axis 1 after N, and sizes >= 1 elsewhere",
                        OPN, name, INTS(v, n));
    *s = dn_shape_make(n, v);
    /* so that rules may multiply its sizes (no tensor has fewer than 4 bytes an element) */
    if (!dn_type_fits(DN_DTYPE_F32, s))
        return fail(r, "%s: %s %s is larger than the %lld bytes a tensor may hold", OPN, name, INTS(v, n),
                    (long long)DN_MAX_TENSOR_BYTES);
    return true;
}

static bool check_act(Rule *r)
{
    const char *act = dn_op_str(r->op, "act");
    if (strcmp(act, "none") && strcmp(act, "relu")) return fail(r, "%s: unknown activation '%s'", OPN, act);
    return true;
}

/* ---- broadcasting ---------------------------------------------------------- */

bool dn_shape_broadcast(const DnShape *a, const DnShape *b, DnShape *out)
{
    DnShape y = {0};
    y.rank = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < y.rank; i++) {
        int64_t da = i < a->rank ? a->dim[a->rank - 1 - i] : 1;
        int64_t db = i < b->rank ? b->dim[b->rank - 1 - i] : 1;
        int64_t d = da == db ? da : da == 1 ? db : db == 1 ? da : 0;
        if (d == 0) return false;
        y.dim[y.rank - 1 - i] = d;
    }
    for (int i = 1; i < y.rank; i++)
        if (y.dim[i] == DN_DIM_N) return false;
    *out = y;
    return true;
}

static bool binary(Rule *r)
{
    const DnValue *a = IN(0), *b = IN(1);
    if (a->dtype != b->dtype) return fail(r, "%s: operand types %s and %s differ", OPN, TY(a), TY(b));
    if (!dn_shape_broadcast(&a->shape, &b->shape, &r->sh[0]))
        return fail(r, "%s: shapes %s and %s do not broadcast", OPN, TY(a), TY(b));
    r->dt[0] = a->dtype;
    return true;
}

RULE(add) { return binary(r); }
RULE(sub) { return binary(r); }
RULE(mul) { return binary(r); }
RULE(div) { return binary(r); }

/* ---- pointwise and friends ----------------------------------------------- */

RULE(scale) { return want(r, 0, -1, "input") && like(r, 0); }
RULE(relu) { return want(r, 0, -1, "input") && like(r, 0); }
RULE(tanh) { return want(r, 0, -1, "input") && like(r, 0); }
RULE(sigmoid) { return want(r, 0, -1, "input") && like(r, 0); }

static bool check_axis(Rule *r, int i)
{
    int64_t axis = dn_op_int(r->op, "axis");
    if (axis < 0 || axis >= IN(i)->shape.rank)
        return fail(r, "%s: axis %lld is out of range for %s", OPN, (long long)axis, TY(IN(i)));
    return true;
}

RULE(softmax) { return want(r, 0, -1, "input") && check_axis(r, 0) && like(r, 0); }
RULE(log_softmax) { return want(r, 0, -1, "input") && check_axis(r, 0) && like(r, 0); }

static bool check_p(Rule *r)
{
    double p = dn_op_float(r->op, "p");
    if (!(p >= 0 && p < 1)) return fail(r, "%s: p must be in [0, 1), got %g", OPN, p);
    return true;
}

RULE(dropout) { return want(r, 0, -1, "input") && check_p(r) && like(r, 0); }
RULE(dropout_bwd) { return want(r, 0, -1, "gradient") && check_p(r) && like(r, 0); }

/* ---- augmentation ---------------------------------------------------------- */

/* The result of a crop to 'size' [h, w] of 4-d operand 0; h, w >= 1. */
static bool crop_size(Rule *r, DnShape *y)
{
    int n;
    const int64_t *sz = dn_op_ints(r->op, "size", &n);
    if (n != 2 || sz[0] < 1 || sz[1] < 1)
        return fail(r, "%s: size %s must be two sizes >= 1 ([height, width])", OPN, INTS(sz, n));
    *y = IN(0)->shape;
    y->dim[2] = sz[0];
    y->dim[3] = sz[1];
    return true;
}

RULE(random_flip)
{
    double p = dn_op_float(r->op, "p");
    if (!want(r, 0, 4, "input")) return false;
    if (!(p >= 0 && p <= 1)) return fail(r, "%s: p must be in [0, 1], got %g", OPN, p);
    return like(r, 0);
}

RULE(random_crop)
{
    int64_t pad = dn_op_int(r->op, "pad");
    if (!want(r, 0, 4, "input") || !crop_size(r, &r->sh[0])) return false;
    const DnShape *x = &IN(0)->shape;
    if (pad < 0 || pad > (1 << 20)) return fail(r, "%s: pad must be in [0, 2^20], got %lld", OPN, (long long)pad);
    if (r->sh[0].dim[2] > x->dim[2] + 2 * pad || r->sh[0].dim[3] > x->dim[3] + 2 * pad)
        return fail(r, "%s: size %s is larger than the padded input %s (pad %lld)", OPN, INTS(r->sh[0].dim + 2, 2),
                    TY(IN(0)), (long long)pad);
    r->dt[0] = DN_DTYPE_F32;
    return true;
}

RULE(random_resized_crop)
{
    const DnOp *op = r->op;
    double s0 = dn_op_float(op, "scale_min"), s1 = dn_op_float(op, "scale_max");
    double q0 = dn_op_float(op, "ratio_min"), q1 = dn_op_float(op, "ratio_max");
    if (!want(r, 0, 4, "input") || !crop_size(r, &r->sh[0])) return false;
    if (!(s0 > 0 && s0 <= s1 && s1 <= 1))
        return fail(r, "%s: scale [%g, %g] must satisfy 0 < min <= max <= 1", OPN, s0, s1);
    if (!(q0 > 0 && q0 <= q1 && q1 < 1e6))
        return fail(r, "%s: ratio [%g, %g] must satisfy 0 < min <= max", OPN, q0, q1);
    r->dt[0] = DN_DTYPE_F32;
    return true;
}

RULE(color_jitter)
{
    double b = dn_op_float(r->op, "brightness"), c = dn_op_float(r->op, "contrast");
    if (!want(r, 0, 4, "input")) return false;
    if (!(b >= 0 && b <= 1 && c >= 0 && c <= 1))
        return fail(r, "%s: brightness and contrast must be in [0, 1], got %g and %g", OPN, b, c);
    return like(r, 0);
}

RULE(pca_lighting)
{
    double sd = dn_op_float(r->op, "std");
    if (!want(r, 0, 4, "input")) return false;
    if (IN(0)->shape.dim[1] != 3) return fail(r, "%s expects 3 channels, got %s", OPN, TY(IN(0)));
    if (!(sd >= 0 && sd < 1e6)) return fail(r, "%s: std must be >= 0, got %g", OPN, sd);
    return like(r, 0);
}

/* y, dy -> dx for the pointwise backward ops. */
static bool unary_bwd(Rule *r) { return want(r, 0, -1, "input") && same(r, 0, 1) && like(r, 0); }

RULE(relu_bwd) { return unary_bwd(r); }
RULE(tanh_bwd) { return unary_bwd(r); }
RULE(sigmoid_bwd) { return unary_bwd(r); }
RULE(softmax_bwd) { return unary_bwd(r) && check_axis(r, 0); }
RULE(log_softmax_bwd) { return unary_bwd(r) && check_axis(r, 0); }

/* ---- convolution and pooling ----------------------------------------------- */

/* Output extent of a window of 'k' (effective size) over 'len' padded by 'p' with stride 's'. */
static int64_t window(int64_t len, int64_t k, int64_t s, int64_t p) { return (len + 2 * p - k) / s + 1; }

/* y = conv2d(x, w) shape, checking channels, groups and geometry. */
static bool conv_geom(Rule *r, const DnShape *x, const DnShape *w, DnShape *y)
{
    const int64_t *s = pair(r, "stride"), *p = pair(r, "pad"), *d = pair(r, "dilation");
    int64_t G = dn_op_int(r->op, "groups");
    if (x->rank != 4) return fail(r, "%s expects a 4-d input, got %s", OPN, TYS(DN_DTYPE_F32, x));
    if (w->rank != 4) return fail(r, "%s expects a 4-d weight, got %s", OPN, TYS(DN_DTYPE_F32, w));
    if (s[0] < 1 || s[1] < 1 || d[0] < 1 || d[1] < 1 || p[0] < 0 || p[1] < 0)
        return fail(r, "%s: stride %s, pad %s, dilation %s: strides and dilations must be >= 1, pads >= 0", OPN,
                    INTS(s, 2), INTS(p, 2), INTS(d, 2));
    int64_t C = x->dim[1], O = w->dim[0];
    if (G < 1 || C % G || O % G)
        return fail(r, "%s: groups = %lld must divide the input channels (%lld) and output channels (%lld)", OPN,
                    (long long)G, (long long)C, (long long)O);
    if (w->dim[1] != C / G)
        return fail(r, "%s: weight %s expects %lld input channels per group, input %s has %lld (groups = %lld)", OPN,
                    TYS(DN_DTYPE_F32, w), (long long)w->dim[1], TYS(DN_DTYPE_F32, x), (long long)C, (long long)G);
    *y = *x;
    y->dim[1] = O;
    for (int i = 0; i < 2; i++) {
        int64_t k = d[i] * (w->dim[2 + i] - 1) + 1;
        if (x->dim[2 + i] + 2 * p[i] < k)
            return fail(r, "%s: kernel %lldx%lld (dilation %s) is larger than the padded input %s (pad %s)", OPN,
                        (long long)w->dim[2], (long long)w->dim[3], INTS(d, 2), TYS(DN_DTYPE_F32, x), INTS(p, 2));
        y->dim[2 + i] = window(x->dim[2 + i], k, s[i], p[i]);
    }
    return true;
}

RULE(conv2d)
{
    if (!want(r, 0, 4, "input") || !want(r, 1, 4, "weight") || !check_act(r)) return false;
    if (r->op->nin == 3) {
        const DnValue *b = IN(2);
        if (!want(r, 2, 1, "bias")) return false;
        if (b->shape.dim[0] != IN(1)->shape.dim[0])
            return fail(r, "%s: bias %s does not match the %lld output channels of weight %s", OPN, TY(b),
                        (long long)IN(1)->shape.dim[0], TY(IN(1)));
    }
    r->dt[0] = DN_DTYPE_F32;
    return conv_geom(r, &IN(0)->shape, &IN(1)->shape, &r->sh[0]);
}

/* Checks that 'got' (the op's dy) equals the forward result 'want_sh'. */
static bool want_dy(Rule *r, const DnShape *want_sh, const DnValue *dy)
{
    if (dn_shape_eq(want_sh, &dy->shape)) return true;
    return fail(r, "%s: gradient %s does not match the forward result %s", OPN, TY(dy), TYS(DN_DTYPE_F32, want_sh));
}

RULE(conv2d_bwd_data)
{
    DnShape xs, ys;
    if (!want(r, 0, 4, "gradient") || !want(r, 1, 4, "weight") || !attr_shape(r, "shape", &xs)) return false;
    if (!conv_geom(r, &xs, &IN(1)->shape, &ys) || !want_dy(r, &ys, IN(0))) return false;
    r->dt[0] = DN_DTYPE_F32;
    r->sh[0] = xs;
    return true;
}

RULE(conv2d_bwd_filter)
{
    DnShape ws, ys;
    if (!want(r, 0, 4, "input") || !want(r, 1, 4, "gradient") || !attr_shape(r, "shape", &ws)) return false;
    if (dn_shape_has_n(&ws)) return fail(r, "%s: weight shape %s cannot hold N", OPN, TYS(DN_DTYPE_F32, &ws));
    if (!conv_geom(r, &IN(0)->shape, &ws, &ys) || !want_dy(r, &ys, IN(1))) return false;
    r->dt[0] = DN_DTYPE_F32;
    r->sh[0] = ws;
    return true;
}

/* Output extent of a pooling window with ceil_mode (PyTorch's pooling_output_shape): one more
 * window when the floor leaves cells over, unless that window would start past len + p. */
static int64_t window_ceil(int64_t len, int64_t k, int64_t s, int64_t p)
{
    int64_t o = (len + 2 * p - k + s - 1) / s + 1;
    return (o - 1) * s >= len + p ? o - 1 : o;
}

/* y = pool(x) shape (ceil_mode: maxpool2d's, 0 for an op without it). */
static bool pool_geom(Rule *r, const DnShape *x, DnShape *y)
{
    const int64_t *k = pair(r, "kernel"), *s = pair(r, "stride"), *p = pair(r, "pad");
    const DnAttr *cm = dn_op_attr(r->op, "ceil_mode");
    int64_t ceil_mode = cm ? cm->i : 0;
    if (ceil_mode != 0 && ceil_mode != 1)
        return fail(r, "%s: ceil_mode must be 0 or 1, got %lld", OPN, (long long)ceil_mode);
    if (x->rank != 4) return fail(r, "%s expects a 4-d input, got %s", OPN, TYS(DN_DTYPE_F32, x));
    for (int i = 0; i < 2; i++)
        if (k[i] < 1 || s[i] < 1 || p[i] < 0 || 2 * p[i] > k[i])
            return fail(r, "%s: kernel %s, stride %s, pad %s: need kernel, stride >= 1 and 0 <= pad <= kernel / 2", OPN,
                        INTS(k, 2), INTS(s, 2), INTS(p, 2));
    *y = *x;
    for (int i = 0; i < 2; i++) {
        if (x->dim[2 + i] + 2 * p[i] < k[i])
            return fail(r, "%s: kernel %s is larger than the padded input %s", OPN, INTS(k, 2), TYS(DN_DTYPE_F32, x));
        y->dim[2 + i] =
            ceil_mode ? window_ceil(x->dim[2 + i], k[i], s[i], p[i]) : window(x->dim[2 + i], k[i], s[i], p[i]);
    }
    return true;
}

RULE(maxpool2d) { return want(r, 0, 4, "input") && like(r, 0) && pool_geom(r, &IN(0)->shape, &r->sh[0]); }
RULE(avgpool2d) { return want(r, 0, 4, "input") && like(r, 0) && pool_geom(r, &IN(0)->shape, &r->sh[0]); }

RULE(maxpool2d_bwd)
{
    DnShape ys;
    if (!want(r, 0, 4, "input") || !want(r, 1, 4, "gradient")) return false;
    return pool_geom(r, &IN(0)->shape, &ys) && want_dy(r, &ys, IN(1)) && like(r, 0);
}

RULE(avgpool2d_bwd)
{
    DnShape xs, ys;
    if (!want(r, 0, 4, "gradient") || !attr_shape(r, "shape", &xs)) return false;
    if (!pool_geom(r, &xs, &ys) || !want_dy(r, &ys, IN(0))) return false;
    r->dt[0] = DN_DTYPE_F32;
    r->sh[0] = xs;
    return true;
}

/* ---- activations and adaptive pooling --------------------------------------- */

static bool check_approximate(Rule *r)
{
    const char *a = dn_op_str(r->op, "approximate");
    if (strcmp(a, "none") && strcmp(a, "tanh"))
        return fail(r, "%s: approximate must be \"none\" or \"tanh\", got '%s'", OPN, a);
    return true;
}

RULE(leaky_relu) { return want(r, 0, -1, "input") && like(r, 0); }
RULE(elu) { return want(r, 0, -1, "input") && like(r, 0); }
RULE(gelu) { return want(r, 0, -1, "input") && check_approximate(r) && like(r, 0); }
RULE(leaky_relu_bwd) { return unary_bwd(r); }
RULE(elu_bwd) { return unary_bwd(r); }
RULE(gelu_bwd) { return check_approximate(r) && unary_bwd(r); }

/* y = adaptive_pool(x) shape: 'out' is [OH, OW], each in [1, DN_MAX_WINDOW]. */
static bool adaptive_geom(Rule *r, const DnShape *x, const int64_t *out, int nout, DnShape *y)
{
    if (x->rank != 4) return fail(r, "%s expects a 4-d input, got %s", OPN, TYS(DN_DTYPE_F32, x));
    if (nout != 2 || out[0] < 1 || out[1] < 1 || out[0] > DN_MAX_WINDOW || out[1] > DN_MAX_WINDOW)
        return fail(r, "%s: out %s must be two sizes [OH, OW], each between 1 and %lld", OPN, INTS(out, nout),
                    (long long)DN_MAX_WINDOW);
    *y = *x;
    y->dim[2] = out[0];
    y->dim[3] = out[1];
    return true;
}

static bool adaptive_fwd(Rule *r)
{
    int n;
    const int64_t *out = dn_op_ints(r->op, "out", &n);
    return want(r, 0, 4, "input") && like(r, 0) && adaptive_geom(r, &IN(0)->shape, out, n, &r->sh[0]);
}

RULE(adaptive_avgpool2d) { return adaptive_fwd(r); }
RULE(adaptive_maxpool2d) { return adaptive_fwd(r); }

RULE(adaptive_avgpool2d_bwd)
{
    DnShape xs, ys;
    if (!want(r, 0, 4, "gradient") || !attr_shape(r, "shape", &xs)) return false;
    const DnShape *dy = &IN(0)->shape;
    if (!adaptive_geom(r, &xs, &dy->dim[2], 2, &ys) || !want_dy(r, &ys, IN(0))) return false;
    r->dt[0] = DN_DTYPE_F32;
    r->sh[0] = xs;
    return true;
}

RULE(adaptive_maxpool2d_bwd)
{
    DnShape ys;
    if (!want(r, 0, 4, "input") || !want(r, 1, 4, "gradient")) return false;
    return adaptive_geom(r, &IN(0)->shape, &IN(1)->shape.dim[2], 2, &ys) && want_dy(r, &ys, IN(1)) && like(r, 0);
}

/* ---- resizing ------------------------------------------------------------------ */

static bool check_mode(Rule *r)
{
    const char *m = dn_op_str(r->op, "mode");
    if (strcmp(m, "bilinear") && strcmp(m, "nearest"))
        return fail(r, "%s: mode must be \"bilinear\" or \"nearest\", got '%s'", OPN, m);
    return true;
}

RULE(interpolate)
{
    int n;
    const int64_t *sz = dn_op_ints(r->op, "size", &n);
    if (!want(r, 0, 4, "input") || !check_mode(r)) return false;
    if (n != 2 || sz[0] < 1 || sz[1] < 1 || sz[0] > DN_MAX_WINDOW || sz[1] > DN_MAX_WINDOW)
        return fail(r, "%s: size %s must be two sizes [OH, OW], each between 1 and %lld", OPN, INTS(sz, n),
                    (long long)DN_MAX_WINDOW);
    like(r, 0);
    r->sh[0].dim[2] = sz[0];
    r->sh[0].dim[3] = sz[1];
    if (!dn_type_fits(DN_DTYPE_F32, &r->sh[0]))
        return fail(r, "%s: result %s is larger than the %lld bytes a tensor may hold", OPN,
                    TYS(DN_DTYPE_F32, &r->sh[0]), (long long)DN_MAX_TENSOR_BYTES);
    return true;
}

RULE(interpolate_bwd)
{
    DnShape xs;
    if (!want(r, 0, 4, "gradient") || !check_mode(r) || !attr_shape(r, "shape", &xs)) return false;
    const DnShape *dy = &IN(0)->shape;
    if (xs.rank != 4 || xs.dim[0] != dy->dim[0] || xs.dim[1] != dy->dim[1])
        return fail(r, "%s: shape %s does not match the gradient %s", OPN, TYS(DN_DTYPE_F32, &xs), TY(IN(0)));
    r->dt[0] = DN_DTYPE_F32;
    r->sh[0] = xs;
    return true;
}

/* ---- dense and matmul ------------------------------------------------------ */

RULE(dense)
{
    if (!want(r, 0, -1, "input") || !want(r, 1, 2, "weight") || !check_act(r)) return false;
    const DnValue *x = IN(0), *w = IN(1);
    if (x->shape.rank < 1 || x->shape.dim[x->shape.rank - 1] != w->shape.dim[1])
        return fail(r, "%s: weight %s expects %lld input features, got %s", OPN, TY(w), (long long)w->shape.dim[1],
                    TY(x));
    if (r->op->nin == 3 && (!want(r, 2, 1, "bias") || IN(2)->shape.dim[0] != w->shape.dim[0]))
        return fail(r, "%s: bias %s does not match the %lld outputs of weight %s", OPN, TY(IN(2)),
                    (long long)w->shape.dim[0], TY(w));
    like(r, 0);
    r->sh[0].dim[x->shape.rank - 1] = w->shape.dim[0];
    return true;
}

static const char *dim_str(int64_t d, char *buf)
{
    if (d == DN_DIM_N) return "N";
    snprintf(buf, 24, "%lld", (long long)d);
    return buf;
}

RULE(matmul)
{
    if (!want(r, 0, -2, "left operand") || !want(r, 1, -2, "right operand")) return false;
    const DnShape *a = &IN(0)->shape, *b = &IN(1)->shape;
    int64_t ta = dn_op_int(r->op, "trans_a"), tb = dn_op_int(r->op, "trans_b");
    if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1)) return fail(r, "%s: trans_a and trans_b must be 0 or 1", OPN);
    int ra = a->rank, rb = b->rank;
    int64_t m = a->dim[ra - 2 + (int)ta], ka = a->dim[ra - 1 - (int)ta];
    int64_t kb = b->dim[rb - 2 + (int)tb], p = b->dim[rb - 1 - (int)tb];
    char b1[24], b2[24];
    if (ka != kb)
        return fail(r, "%s: inner dimensions of %s and %s differ: %s vs %s", OPN, TY(IN(0)), TY(IN(1)), dim_str(ka, b1),
                    dim_str(kb, b2));
    if (rb != 2 && (ra != rb || memcmp(a->dim, b->dim, (size_t)(ra - 2) * sizeof a->dim[0])))
        return fail(r, "%s: batch dimensions of %s and %s differ", OPN, TY(IN(0)), TY(IN(1)));
    DnShape y = *a;
    y.dim[ra - 2] = m;
    y.dim[ra - 1] = p;
    for (int i = 1; i < ra; i++)
        if (y.dim[i] == DN_DIM_N)
            return fail(r, "%s: the result of %s and %s would have N in axis %d", OPN, TY(IN(0)), TY(IN(1)), i);
    r->dt[0] = DN_DTYPE_F32;
    r->sh[0] = y;
    return true;
}

/* ---- shape manipulation ---------------------------------------------------- */

RULE(reshape)
{
    const DnValue *x = IN(0);
    DnShape t;
    if (!attr_shape(r, "shape", &t)) return false;
    int n;
    const int64_t *v = dn_op_ints(r->op, "shape", &n);
    if (dn_shape_has_n(&x->shape) != dn_shape_has_n(&t))
        return fail(r, "%s: cannot reshape %s to %s: -1 (N) in axis 0 must match the input's batch dimension", OPN,
                    TY(x), INTS(v, n));
    int64_t a = dn_shape_numel_static(&x->shape), b = dn_shape_numel_static(&t);
    if (a != b)
        return fail(r, "%s: cannot reshape %s to %s: %lld vs %lld elements%s", OPN, TY(x), INTS(v, n), (long long)a,
                    (long long)b, dn_shape_has_n(&t) ? " per sample" : "");
    r->dt[0] = x->dtype;
    r->sh[0] = t;
    return true;
}

RULE(transpose)
{
    const DnValue *x = IN(0);
    int n;
    const int64_t *perm = dn_op_ints(r->op, "perm", &n);
    bool ok = n == x->shape.rank;
    for (int i = 0; ok && i < n; i++) {
        ok = perm[i] >= 0 && perm[i] < n;
        for (int j = 0; ok && j < i; j++) ok = perm[j] != perm[i];
    }
    if (!ok) return fail(r, "%s: perm %s is not a permutation of the axes of %s", OPN, INTS(perm, n), TY(x));
    if (dn_shape_has_n(&x->shape) && perm[0] != 0)
        return fail(r, "%s: perm %s must keep the batch axis of %s first", OPN, INTS(perm, n), TY(x));
    like(r, 0);
    for (int i = 0; i < n; i++) r->sh[0].dim[i] = x->shape.dim[perm[i]];
    return true;
}

RULE(copy) { return like(r, 0); }

RULE(fill)
{
    r->dt[0] = DN_DTYPE_F32;
    return attr_shape(r, "shape", &r->sh[0]);
}

RULE(sum_to)
{
    const DnValue *x = IN(0);
    DnShape t, b;
    if (!attr_shape(r, "shape", &t)) return false;
    int n;
    const int64_t *v = dn_op_ints(r->op, "shape", &n);
    if (!dn_shape_broadcast(&t, &x->shape, &b) || !dn_shape_eq(&b, &x->shape))
        return fail(r, "%s: shape %s does not broadcast to %s", OPN, INTS(v, n), TY(x));
    r->dt[0] = x->dtype;
    r->sh[0] = t;
    return true;
}

/* ---- shape family: concat, slice, slice_bwd -------------------------------- */

RULE(concat)
{
    const DnValue *x0 = IN(0);
    if (!check_axis(r, 0)) return false;
    int axis = (int)dn_op_int(r->op, "axis");
    if (x0->shape.dim[axis] == DN_DIM_N)
        return fail(r, "%s: cannot concatenate along the batch axis N of %s (its size is known only at run time)", OPN,
                    TY(x0));
    DnShape y = x0->shape;
    for (int i = 1; i < r->op->nin; i++) {
        const DnValue *xi = IN(i);
        if (xi->dtype != x0->dtype || xi->shape.rank != x0->shape.rank)
            return fail(r, "%s: operand %d %s does not match operand 0 %s (same dtype and rank needed)", OPN, i, TY(xi),
                        TY(x0));
        for (int d = 0; d < y.rank; d++)
            if (d != axis && xi->shape.dim[d] != x0->shape.dim[d])
                return fail(r, "%s: operand %d %s differs from operand 0 %s in axis %d (only axis %d may differ)", OPN,
                            i, TY(xi), TY(x0), d, axis);
        y.dim[axis] += xi->shape.dim[axis];
    }
    r->dt[0] = x0->dtype;
    r->sh[0] = y;
    return true;
}

/* Checks the slice attributes against 'x' (the forward input's shape) and
 * gives the sliced shape. */
static bool slice_geom(Rule *r, const DnShape *x, DnShape *y)
{
    int64_t axis = dn_op_int(r->op, "axis"), start = dn_op_int(r->op, "start"), stop = dn_op_int(r->op, "stop"),
            step = dn_op_int(r->op, "step");
    if (axis < 0 || axis >= x->rank)
        return fail(r, "%s: axis %lld is out of range for %s", OPN, (long long)axis, TYS(DN_DTYPE_F32, x));
    if (x->dim[axis] == DN_DIM_N)
        return fail(r, "%s: cannot slice the batch axis N of %s (its size is known only at run time)", OPN,
                    TYS(DN_DTYPE_F32, x));
    if (step < 1 || start < 0 || start >= stop || stop > x->dim[axis])
        return fail(r,
                    "%s: start %lld, stop %lld, step %lld on axis %lld of size %lld: need 0 <= start < stop <= size "
                    "and step >= 1",
                    OPN, (long long)start, (long long)stop, (long long)step, (long long)axis, (long long)x->dim[axis]);
    *y = *x;
    y->dim[axis] = 1 + (stop - start - 1) / step; /* ceil((stop - start) / step) without overflow */
    return true;
}

RULE(slice) { return like(r, 0) && slice_geom(r, &IN(0)->shape, &r->sh[0]); }

RULE(slice_bwd)
{
    DnShape xs, ys;
    if (!want(r, 0, -1, "gradient") || !attr_shape(r, "shape", &xs)) return false;
    if (xs.rank != IN(0)->shape.rank)
        return fail(r, "%s: shape %s and gradient %s differ in rank", OPN, TYS(DN_DTYPE_F32, &xs), TY(IN(0)));
    if (!slice_geom(r, &xs, &ys) || !want_dy(r, &ys, IN(0))) return false;
    r->dt[0] = DN_DTYPE_F32;
    r->sh[0] = xs;
    return true;
}

/* ---- normalization --------------------------------------------------------- */

/* Operands first..first+count-1 are f32 [C] for x's C channels. */
static bool per_channel(Rule *r, int first, int count, const char *const *what)
{
    int64_t C = IN(0)->shape.dim[1];
    for (int i = first; i < first + count; i++) {
        const DnValue *v = IN(i);
        if (v->dtype != DN_DTYPE_F32 || v->shape.rank != 1 || v->shape.dim[0] != C)
            return fail(r, "%s: %s %s does not match the %lld channels of %s", OPN, what[i - first], TY(v),
                        (long long)C, TY(IN(0)));
    }
    return true;
}

static const char *const bn_names[] = {"weight", "bias", "running_mean", "running_var"};

/* The optional sixth operand, num_batches_tracked, is an i64 scalar. */
static bool batch_counter(Rule *r)
{
    if (r->op->nin < 6 || (IN(5)->dtype == DN_DTYPE_I64 && IN(5)->shape.rank == 0)) return true;
    return fail(r, "%s: num_batches_tracked must be i64[], got %s", OPN, TY(IN(5)));
}

/* momentum in [0, 1]; checked here too, since the training pass turns a
 * batchnorm into a batchnorm_train with the same attributes. */
static bool bn_momentum(Rule *r)
{
    double m = dn_op_float(r->op, "momentum");
    if (!(m >= 0 && m <= 1)) return fail(r, "%s: momentum must be in [0, 1], got %g", OPN, m);
    return true;
}

RULE(batchnorm)
{
    return bn_momentum(r) && want(r, 0, -2, "input") && per_channel(r, 1, 4, bn_names) && batch_counter(r) &&
           like(r, 0);
}

/* Results 1.. are f32 [C]. */
static bool channel_results(Rule *r, int from, int to)
{
    for (int i = from; i < to; i++) {
        r->dt[i] = DN_DTYPE_F32;
        r->sh[i] = dn_shape_make(1, &IN(0)->shape.dim[1]);
    }
    return true;
}

RULE(batchnorm_train)
{
    return bn_momentum(r) && want(r, 0, -2, "input") && per_channel(r, 1, 4, bn_names) && batch_counter(r) &&
           like(r, 0) && channel_results(r, 1, 3);
}

RULE(batchnorm_bwd)
{
    static const char *const names[] = {"weight", "saved_mean", "saved_invstd"};
    return want(r, 0, -2, "input") && per_channel(r, 1, 3, names) && same(r, 0, 4) && like(r, 0) &&
           channel_results(r, 1, 3);
}

/* ---- layer norm -------------------------------------------------------------- */

/* The last 'dims' axes of operand 0 (static: neither N nor T among them) as
 * *norm, the others with a trailing 2 as *stats. */
static bool ln_axes(Rule *r, DnShape *norm, DnShape *stats)
{
    const DnShape *s = &IN(0)->shape;
    int64_t dims = dn_op_int(r->op, "dims");
    if (dims < 1 || dims > s->rank)
        return fail(r, "%s: dims %lld must be in 1..%d (the axes of %s normalised together)", OPN, (long long)dims,
                    s->rank, TY(IN(0)));
    int lead = s->rank - (int)dims;
    for (int i = lead; i < s->rank; i++)
        if (s->dim[i] < 1)
            return fail(r, "%s: dims %lld would normalise across the %s axis of %s", OPN, (long long)dims,
                        s->dim[i] == DN_DIM_N ? "batch" : "sequence", TY(IN(0)));
    *norm = (DnShape){.rank = (int)dims};
    for (int i = 0; i < dims; i++) norm->dim[i] = s->dim[lead + i];
    *stats = (DnShape){.rank = lead + 1};
    for (int i = 0; i < lead; i++) stats->dim[i] = s->dim[i];
    stats->dim[lead] = 2;
    return true;
}

/* Operand i is f32 of shape 'want' (the normalised axes'). */
static bool ln_affine(Rule *r, int i, const DnShape *want, const char *what)
{
    if (IN(i)->dtype != DN_DTYPE_F32 || !dn_shape_eq(&IN(i)->shape, want))
        return fail(r, "%s: %s %s does not match the normalised axes %s of %s", OPN, what, TY(IN(i)),
                    TYS(DN_DTYPE_F32, want), TY(IN(0)));
    return true;
}

static bool ln_stats(Rule *r, int i, const DnShape *stats)
{
    if (IN(i)->dtype != DN_DTYPE_F32 || !dn_shape_eq(&IN(i)->shape, stats))
        return fail(r, "%s: stats %s must be %s", OPN, TY(IN(i)), TYS(DN_DTYPE_F32, stats));
    return true;
}

RULE(layernorm)
{
    DnShape norm, stats;
    if (!want(r, 0, -1, "input") || !ln_axes(r, &norm, &stats)) return false;
    if (r->op->nin == 2) return fail(r, "%s takes a weight and a bias, or neither", OPN);
    if (r->op->nin == 3 && (!ln_affine(r, 1, &norm, "weight") || !ln_affine(r, 2, &norm, "bias"))) return false;
    float eps = (float)dn_op_float(r->op, "eps");
    if (!(eps > 0)) return fail(r, "%s: eps must be > 0, got %g", OPN, (double)eps);
    like(r, 0);
    r->dt[1] = DN_DTYPE_F32;
    r->sh[1] = stats;
    return true;
}

RULE(layernorm_bwd)
{
    DnShape norm, stats;
    return want(r, 0, -1, "input") && ln_axes(r, &norm, &stats) && ln_stats(r, 1, &stats) && same(r, 0, 2) &&
           (r->op->nin < 4 || ln_affine(r, 3, &norm, "weight")) && like(r, 0);
}

RULE(layernorm_bwd_params)
{
    DnShape norm, stats;
    if (!want(r, 0, -1, "input") || !ln_axes(r, &norm, &stats) || !ln_stats(r, 1, &stats) || !same(r, 0, 2))
        return false;
    for (int i = 0; i < 2; i++) r->dt[i] = DN_DTYPE_F32, r->sh[i] = norm;
    return true;
}

/* ---- tiled attention -------------------------------------------------------- */

/* q, k, v (operands 0..2) f32 [..., Tq, d], [..., Tk, d], [..., Tk, dv] with the
 * same leading axes and static sizes after N; the bias (operand 'bias', when
 * present) f32 and broadcast to the scores [..., Tq, Tk] without changing
 * them; the attributes in range.  Fills *o with o's shape. */
static bool attention_operands(Rule *r, int bias, DnShape *o)
{
    if (!want(r, 0, -2, "query") || !want(r, 1, -2, "key") || !want(r, 2, -2, "value")) return false;
    const DnShape *q = &IN(0)->shape, *k = &IN(1)->shape, *v = &IN(2)->shape;
    int n = q->rank;
    bool ok = k->rank == n && v->rank == n && q->dim[n - 1] == k->dim[n - 1] && k->dim[n - 2] == v->dim[n - 2];
    for (int i = 0; ok && i < n - 2; i++) ok = q->dim[i] == k->dim[i] && q->dim[i] == v->dim[i];
    for (int i = 1; ok && i < n; i++) ok = q->dim[i] >= 1 && k->dim[i] >= 1 && v->dim[i] >= 1;
    if (!ok)
        return fail(r,
                    "%s: query %s, key %s and value %s must be [..., Tq, d], [..., Tk, d] and [..., Tk, dv] "
                    "with the same leading axes and static sizes after N",
                    OPN, TY(IN(0)), TY(IN(1)), TY(IN(2)));
    DnShape sc = *q, both;
    sc.dim[n - 1] = k->dim[n - 2];
    if (r->op->nin > bias) {
        if (!want(r, bias, -1, "bias")) return false;
        if (!dn_shape_broadcast(&IN(bias)->shape, &sc, &both) || !dn_shape_eq(&both, &sc))
            return fail(r, "%s: bias %s does not broadcast to the scores %s", OPN, TY(IN(bias)),
                        TYS(DN_DTYPE_F32, &sc));
    }
    double scale = dn_op_float(r->op, "scale");
    int64_t c = dn_op_int(r->op, "causal"), bq = dn_op_int(r->op, "block_q"), bk = dn_op_int(r->op, "block_k");
    if (!(scale > 0) || !isfinite(scale) || (c != 0 && c != 1) || bq < 0 || bk < 0 || bq > 4096 || bk > 4096)
        return fail(r, "%s: scale must be finite and > 0, causal 0 or 1, block_q and block_k in [0, 4096]", OPN);
    *o = *q;
    o->dim[n - 1] = v->dim[n - 1];
    return true;
}

RULE(flash_attention)
{
    DnShape o;
    if (!attention_operands(r, 3, &o)) return false;
    r->dt[0] = r->dt[1] = DN_DTYPE_F32;
    r->sh[0] = o;
    r->sh[1] = o;
    r->sh[1].rank--;
    return true;
}

RULE(flash_attention_bwd)
{
    DnShape o;
    if (!attention_operands(r, 6, &o)) return false;
    DnShape lse = o;
    lse.rank--;
    if (IN(3)->dtype != DN_DTYPE_F32 || !dn_shape_eq(&IN(3)->shape, &o) || IN(5)->dtype != DN_DTYPE_F32 ||
        !dn_shape_eq(&IN(5)->shape, &o))
        return fail(r, "%s: o %s and do %s must be %s", OPN, TY(IN(3)), TY(IN(5)), TYS(DN_DTYPE_F32, &o));
    if (IN(4)->dtype != DN_DTYPE_F32 || !dn_shape_eq(&IN(4)->shape, &lse))
        return fail(r, "%s: lse %s must be %s", OPN, TY(IN(4)), TYS(DN_DTYPE_F32, &lse));
    for (int i = 0; i < 3; i++) r->dt[i] = DN_DTYPE_F32, r->sh[i] = IN(i)->shape;
    return true;
}

/* q, k, v [B, 1, E] with B static, the caches [B, S, E] f32, pos i32 [B, 1]. */
RULE(cached_attention)
{
    const DnShape *q = &IN(0)->shape;
    int64_t H = dn_op_int(r->op, "heads");
    bool ok = q->rank == 3 && q->dim[0] >= 1 && q->dim[1] == 1 && q->dim[2] >= 1;
    for (int i = 0; ok && i < 3; i++) ok = IN(i)->dtype == DN_DTYPE_F32 && dn_shape_eq(&IN(i)->shape, q);
    if (!ok)
        return fail(r, "%s: q %s, k %s and v %s must be f32 [B, 1, E], one step of a static batch B", OPN, TY(IN(0)),
                    TY(IN(1)), TY(IN(2)));
    const DnShape *c = &IN(3)->shape;
    if (IN(3)->dtype != DN_DTYPE_F32 || c->rank != 3 || c->dim[0] != q->dim[0] || c->dim[1] < 1 ||
        c->dim[2] != q->dim[2] || IN(4)->dtype != DN_DTYPE_F32 || !dn_shape_eq(&IN(4)->shape, c))
        return fail(r, "%s: k_cache %s and v_cache %s must be f32 [B, S, E] = [%lld, S, %lld]", OPN, TY(IN(3)),
                    TY(IN(4)), (long long)q->dim[0], (long long)q->dim[2]);
    const DnShape *p = &IN(5)->shape;
    if (IN(5)->dtype != DN_DTYPE_I32 || p->rank != 2 || p->dim[0] != q->dim[0] || p->dim[1] != 1)
        return fail(r, "%s: pos %s must be i32 [B, 1] = [%lld, 1]", OPN, TY(IN(5)), (long long)q->dim[0]);
    if (H < 1 || q->dim[2] % H)
        return fail(r, "%s: heads %lld must divide E = %lld", OPN, (long long)H, (long long)q->dim[2]);
    r->dt[0] = DN_DTYPE_F32;
    r->sh[0] = *q;
    return true;
}

/* ---- embeddings and sequences ---------------------------------------------- */

/* Operand 0 holds i32 indices, and padding_idx is -1 or a row of 'rows'. */
static bool index_operand(Rule *r, int64_t rows)
{
    int64_t pad = dn_op_int(r->op, "padding_idx");
    if (IN(0)->dtype != DN_DTYPE_I32) return fail(r, "%s expects i32 indices, got %s", OPN, TY(IN(0)));
    if (IN(0)->shape.rank >= DN_MAX_RANK)
        return fail(r, "%s: indices %s have too many axes (at most %d)", OPN, TY(IN(0)), DN_MAX_RANK - 1);
    if (pad < -1 || pad >= rows)
        return fail(r, "%s: padding_idx %lld must be -1 (none) or a row in [0, %lld)", OPN, (long long)pad,
                    (long long)rows);
    return true;
}

/* The indices' shape with 'd' appended. */
static DnShape with_last(const DnShape *s, int64_t d)
{
    DnShape y = *s;
    y.dim[y.rank++] = d;
    return y;
}

RULE(embedding)
{
    if (!want(r, 1, 2, "weight") || !index_operand(r, IN(1)->shape.dim[0])) return false;
    r->dt[0] = DN_DTYPE_F32;
    r->sh[0] = with_last(&IN(0)->shape, IN(1)->shape.dim[1]);
    return true;
}

RULE(embedding_bwd)
{
    int64_t num = dn_op_int(r->op, "num");
    if (num < 1) return fail(r, "%s: num %lld must be >= 1", OPN, (long long)num);
    if (!want(r, 1, -1, "gradient") || !index_operand(r, num)) return false;
    const DnShape *dy = &IN(1)->shape;
    if (dy->rank < 1) return fail(r, "%s expects a gradient of rank >= 1, got %s", OPN, TY(IN(1)));
    DnShape want_sh = with_last(&IN(0)->shape, dy->dim[dy->rank - 1]);
    if (!want_dy(r, &want_sh, IN(1))) return false;
    int64_t d[2] = {num, dy->dim[dy->rank - 1]};
    r->dt[0] = DN_DTYPE_F32;
    r->sh[0] = dn_shape_make(2, d);
    return true;
}

static bool table_shape(Rule *r);
RULE(sinusoid)
{
    if (!table_shape(r)) return false;
    if (r->op->nin == 0) return true;
    const DnShape *p = &IN(0)->shape;
    if (IN(0)->dtype != DN_DTYPE_I32 || p->rank >= DN_MAX_RANK || dn_shape_has_n(p))
        return fail(r, "%s: pos %s must be i32 of a static shape with at most %d axes", OPN, TY(IN(0)),
                    DN_MAX_RANK - 1);
    r->sh[0] = *p;
    r->sh[0].dim[r->sh[0].rank++] = dn_op_int(r->op, "cols");
    return true;
}
RULE(causal_bias) { return table_shape(r); }

/* A constant table f32 [rows, cols]. */
static bool table_shape(Rule *r)
{
    int64_t rows = dn_op_int(r->op, "rows"), cols = dn_op_int(r->op, "cols");
    if (rows < 1 || cols < 1 || rows > ((int64_t)1 << 24) || cols > ((int64_t)1 << 24))
        return fail(r, "%s: rows %lld and cols %lld must be in 1..2^24", OPN, (long long)rows, (long long)cols);
    int64_t d[2] = {rows, cols};
    r->dt[0] = DN_DTYPE_F32;
    r->sh[0] = dn_shape_make(2, d);
    return true;
}

RULE(sequence_mask)
{
    int64_t T = dn_op_int(r->op, "max_len");
    if (IN(0)->dtype != DN_DTYPE_I32) return fail(r, "%s expects i32 lengths, got %s", OPN, TY(IN(0)));
    if (IN(0)->shape.rank >= DN_MAX_RANK)
        return fail(r, "%s: lengths %s have too many axes (at most %d)", OPN, TY(IN(0)), DN_MAX_RANK - 1);
    if (seq_dim_ok(T)) { /* max_len = T: the mask [N, T] of the run-time sequence axis */
        if (IN(0)->shape.rank != 1 || !dn_shape_has_n(&IN(0)->shape))
            return fail(r, "%s: a mask over T needs lengths i32[N], got %s", OPN, TY(IN(0)));
    } else if (T < 1 || T > ((int64_t)1 << 40))
        return fail(r, "%s: max_len %lld must be >= 1", OPN, (long long)T);
    r->dt[0] = DN_DTYPE_F32;
    r->sh[0] = with_last(&IN(0)->shape, T);
    return true;
}

/* ---- recurrent layers (rnn_cell.h) ------------------------------------------ */

/* The cell attribute, or a diagnostic naming the known ones. */
static const DnRnnCellInfo *rnn_cell(Rule *r)
{
    const char *name = dn_op_str(r->op, "cell");
    const DnRnnCellInfo *c = dn_rnn_cell(name);
    if (!c) fail(r, "%s: unknown cell '%s' (rnn_tanh, rnn_relu, lstm or gru)", OPN, name);
    return c;
}

/* Operand 'i' is f32 [d0, d1] or [d0, d1, d2] as given (d2 < 0: rank 2);
 * d0 is the batch axis (N or fixed, as 'batch'). */
static bool rnn_operand(Rule *r, int i, const char *what, const DnShape *want_sh)
{
    const DnValue *v = IN(i);
    if (v->dtype != DN_DTYPE_F32 || !dn_shape_eq(&v->shape, want_sh))
        return fail(r, "%s expects %s %s, got %s", OPN, what, TYS(DN_DTYPE_F32, want_sh), TY(v));
    return true;
}

/* Checks the operands shared by both ops: 'seq' [n, T, width] (operand
 * 'iseq'), w_hh [G*H, H] (operand 'iw'), the state-shaped operand 'is'
 * [n, S*H], the optional mask (operand 'imask' when present).  Gives H, T
 * and the batch axis 'n'. */
static bool rnn_common(Rule *r, const DnRnnCellInfo *c, int iseq, int64_t width_per_h, int iw, int is, int imask,
                       int64_t *H, int64_t *T, int64_t *n)
{
    const DnValue *w = IN(iw), *x = IN(iseq);
    if (!want(r, iw, 2, "w_hh")) return false;
    *H = w->shape.dim[1];
    if (w->shape.dim[0] != c->gates * *H)
        return fail(r, "%s: w_hh %s must be [%d*H, H] for cell %s", OPN, TY(w), c->gates, c->name);
    if (x->dtype != DN_DTYPE_F32 || x->shape.rank != 3)
        return fail(r, "%s expects a 3-d f32 sequence [batch, T, %lld], got %s", OPN, (long long)(width_per_h * *H),
                    TY(x));
    *n = x->shape.dim[0];
    *T = x->shape.dim[1];
    DnShape seq = dn_shape_make(3, (int64_t[]){*n, *T, width_per_h * *H});
    DnShape st = dn_shape_make(2, (int64_t[]){*n, c->state * *H});
    DnShape mk = dn_shape_make(2, (int64_t[]){*n, *T});
    if (!rnn_operand(r, iseq, "a sequence", &seq) || !rnn_operand(r, is, "a state", &st)) return false;
    if (imask < r->op->nin && !rnn_operand(r, imask, "a mask", &mk)) return false;
    int64_t rev = dn_op_int(r->op, "reverse");
    if (rev != 0 && rev != 1) return fail(r, "%s: reverse must be 0 or 1, got %lld", OPN, (long long)rev);
    return true;
}

RULE(rnn_scan)
{
    const DnRnnCellInfo *c = rnn_cell(r);
    int64_t H, T, n;
    if (!c || !rnn_common(r, c, 0, c->gates, 1, 3, 4, &H, &T, &n)) return false;
    DnShape b = dn_shape_make(1, (int64_t[]){c->gates * H});
    if (!rnn_operand(r, 2, "b_hh", &b)) return false;
    for (int i = 0; i < 3; i++) r->dt[i] = DN_DTYPE_F32;
    r->sh[0] = dn_shape_make(3, (int64_t[]){n, T, H});
    r->sh[1] = IN(3)->shape;
    r->sh[2] = dn_shape_make(3, (int64_t[]){n, T, c->saved * H});
    if (!dn_type_fits(DN_DTYPE_F32, &r->sh[2]))
        return fail(r, "%s: its saved steps %s exceed the %lld bytes a tensor may hold", OPN,
                    TYS(DN_DTYPE_F32, &r->sh[2]), (long long)DN_MAX_TENSOR_BYTES);
    return true;
}

RULE(rnn_scan_bwd)
{
    const DnRnnCellInfo *c = rnn_cell(r);
    int64_t H, T, n;
    if (!c || !rnn_common(r, c, 0, 1, 3, 1, 4, &H, &T, &n)) return false;
    DnShape save = dn_shape_make(3, (int64_t[]){n, T, c->saved * H});
    if (!rnn_operand(r, 2, "saved steps", &save)) return false;
    for (int i = 0; i < 3; i++) r->dt[i] = DN_DTYPE_F32;
    r->sh[0] = r->sh[1] = dn_shape_make(3, (int64_t[]){n, T, c->gates * H});
    r->sh[2] = IN(1)->shape;
    return true;
}

/* ---- losses ---------------------------------------------------------------- */

static bool scalar_result(Rule *r)
{
    r->dt[0] = DN_DTYPE_F32;
    r->sh[0] = (DnShape){0};
    return true;
}

/* logits [N, ..., K] and labels [N, ...]: the logits' shape without its last axis. */
static bool ce_operands(Rule *r)
{
    const DnValue *x = IN(0), *y = IN(1);
    double s = dn_op_float(r->op, "smoothing");
    if (!want(r, 0, -2, "logits")) return false;
    DnShape rows = x->shape;
    rows.rank--;
    if ((y->dtype != DN_DTYPE_I32 && y->dtype != DN_DTYPE_I64) || !dn_shape_eq(&y->shape, &rows)) {
        char want_dims[96] = "";
        size_t at = 0;
        for (int i = 0; i < rows.rank && at < sizeof want_dims; i++)
            at += (size_t)snprintf(want_dims + at, sizeof want_dims - at, "%s%s", i ? ", " : "",
                                   dim_str(rows.dim[i], (char[24]){0}));
        return fail(r, "%s: labels %s do not match logits %s (expected i32[%s])", OPN, TY(y), TY(x), want_dims);
    }
    if (!(s >= 0 && s <= 1)) return fail(r, "%s: smoothing must be in [0, 1], got %g", OPN, s);
    return true;
}

static bool want_dloss(Rule *r, int i)
{
    if (IN(i)->dtype != DN_DTYPE_F32 || IN(i)->shape.rank != 0)
        return fail(r, "%s expects an f32[] loss gradient, got %s", OPN, TY(IN(i)));
    return true;
}

RULE(cross_entropy) { return ce_operands(r) && scalar_result(r); }
RULE(cross_entropy_bwd) { return ce_operands(r) && want_dloss(r, 2) && like(r, 0); }
RULE(mse) { return want(r, 0, -1, "prediction") && same(r, 0, 1) && scalar_result(r); }
RULE(mse_bwd) { return want(r, 0, -1, "prediction") && same(r, 0, 1) && want_dloss(r, 2) && like(r, 0); }

/* ---- optimizer updates ----------------------------------------------------- */

static bool check_sched(Rule *r)
{
    const DnOp *op = r->op;
    const char *s = dn_op_str(op, "sched");
    if (strcmp(s, "const") && strcmp(s, "step") && strcmp(s, "cosine"))
        return fail(r, "%s: unknown schedule '%s' (const, step or cosine)", OPN, s);
    if (!(dn_op_float(op, "lr") >= 0) || !(dn_op_float(op, "weight_decay") >= 0) || !(dn_op_float(op, "min_lr") >= 0))
        return fail(r, "%s: lr, weight_decay and min_lr must be >= 0", OPN);
    if (dn_op_int(op, "step_size") < 1 || dn_op_int(op, "total_steps") < 1 || dn_op_int(op, "warmup") < 0)
        return fail(r, "%s: step_size and total_steps must be >= 1, warmup >= 0", OPN);
    return true;
}

/* Operands 1..n-1 have the type of the parameter (operand 0). */
static bool like_param(Rule *r)
{
    if (!want(r, 0, -1, "parameter")) return false;
    for (int i = 1; i < r->op->nin; i++)
        if (!same(r, 0, i)) return false;
    return true;
}

RULE(sgd_update)
{
    const DnOp *op = r->op;
    int64_t nest = dn_op_int(op, "nesterov");
    if (!(dn_op_float(op, "momentum") >= 0) || (nest != 0 && nest != 1))
        return fail(r, "%s: momentum must be >= 0 and nesterov 0 or 1", OPN);
    return like_param(r) && check_sched(r);
}

RULE(adam_update)
{
    const DnOp *op = r->op;
    double b1 = dn_op_float(op, "beta1"), b2 = dn_op_float(op, "beta2");
    int64_t dec = dn_op_int(op, "decoupled");
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1))
        return fail(r, "%s: beta1 and beta2 must be in [0, 1), got %g and %g", OPN, b1, b2);
    if (!(dn_op_float(op, "eps") >= 0) || (dec != 0 && dec != 1))
        return fail(r, "%s: eps must be >= 0 and decoupled 0 or 1", OPN);
    return like_param(r) && check_sched(r);
}

/* ---- guards ---------------------------------------------------------------- */

/* The largest code a check_finite may give: it becomes the entry's int32 status. */
#define MAX_GUARD_CODE (INT64_C(1) << 30)

RULE(check_finite)
{
    int k;
    const int64_t *codes = dn_op_ints(r->op, "codes", &k);
    if (k < 1 || k > r->op->nin || r->op->nin > k + 1)
        return fail(r, "%s: %d codes for %d operands (one per checked operand, then an optional earlier flag)", OPN, k,
                    r->op->nin);
    for (int i = 0; i < k; i++)
        if (codes[i] < 1 || codes[i] > MAX_GUARD_CODE)
            return fail(r, "%s: code %lld is outside [1, %lld]", OPN, (long long)codes[i], (long long)MAX_GUARD_CODE);
    for (int i = 0; i < k; i++)
        if (IN(i)->dtype != DN_DTYPE_F32) return fail(r, "%s expects f32 operands to check, got %s", OPN, TY(IN(i)));
    if (r->op->nin == k + 1 && (IN(k)->dtype != DN_DTYPE_I32 || IN(k)->shape.rank != 0))
        return fail(r, "%s: the operand after the checked ones must be an earlier flag, i32[], got %s", OPN, TY(IN(k)));
    r->dt[0] = DN_DTYPE_I32;
    r->sh[0] = (DnShape){0};
    return true;
}

/* ---- the table ------------------------------------------------------------- */

static bool (*const rules[DN_OP_COUNT])(Rule *) = {
#define OP(E, nm, mi, ma, no, fl, at) [DN_OP_##E] = shape_##nm,
#include "ops.def"
#undef OP
};

/* Window attributes bounded before any rule does arithmetic with them. */
static bool window_attrs_fit(Rule *r)
{
    for (int a = 0; a < r->op->nattrs; a++) {
        const DnAttr *at = &r->op->attrs[a];
        if (at->kind != DN_ATTR_INTS || !dn_attr_is_window(at->name)) continue;
        for (int i = 0; i < at->nints; i++)
            if (at->ints[i] > DN_MAX_WINDOW || at->ints[i] < -DN_MAX_WINDOW)
                return fail(r, "%s: %s %s is out of range (at most %lld)", OPN, at->name, INTS(at->ints, at->nints),
                            (long long)DN_MAX_WINDOW);
    }
    return true;
}

DnStatus dn_infer_shapes(DnCtx *cx, const DnOp *op, DnDType *dt, DnShape *sh)
{
    DN_ASSERT(op->kind >= 0 && op->kind < DN_OP_COUNT && op->nout <= DN_MAX_OUTS);
    Rule rule = {.cx = cx, .op = op}, *r = &rule;
    for (int i = 0; i < op->nin; i++)
        if (!dn_type_fits(IN(i)->dtype, &IN(i)->shape)) {
            fail(r, "%s: operand %s is larger than the %lld bytes a tensor may hold", OPN, TY(IN(i)),
                 (long long)DN_MAX_TENSOR_BYTES);
            return DN_ERR;
        }
    if (!window_attrs_fit(r) || !rules[op->kind](r)) return DN_ERR;
    for (int i = 0; i < op->nout; i++) {
        if (!dn_type_fits(r->dt[i], &r->sh[i])) {
            fail(r, "%s: result %s is larger than the %lld bytes a tensor may hold", OPN, TYS(r->dt[i], &r->sh[i]),
                 (long long)DN_MAX_TENSOR_BYTES);
            return DN_ERR;
        }
        dt[i] = r->dt[i];
        sh[i] = r->sh[i];
    }
    return DN_OK;
}
