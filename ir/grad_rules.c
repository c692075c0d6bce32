/* grad_rules.c -- one gradient rule per op kind (grad_<op name>), and the
 * table autodiff dispatches through.
 *
 * Every op of ops.def has a GRAD_<ENUM> line below naming its rule or NONE,
 * so adding an op without deciding its gradient fails to compile.  Rules
 * build only the operand gradients dn_ad_needs asks for; broadcasting ops
 * reduce with sum_to; activations differentiate through their output y.
 */
#include "grad.h"

/* ---- small builders ------------------------------------------------------ */

static DnValue *b2(DnAd *a, DnOpKind kind, DnValue *x, DnValue *y)
{
    DnValue *in[2] = {x, y};
    return dn_ad_build(a, kind, 2, in, 0, NULL);
}

static DnValue *scale(DnAd *a, DnValue *x, double alpha)
{
    DnAttr at = dn_attr_float("alpha", alpha);
    return dn_ad_build(a, DN_OP_SCALE, 1, &x, 1, &at);
}

static DnValue *reshape(DnAd *a, DnValue *x, const DnShape *s)
{
    if (x && dn_shape_eq(&x->shape, s)) return x;
    DnAttr at = dn_ad_shape_attr(a, "shape", s);
    return dn_ad_build(a, DN_OP_RESHAPE, 1, &x, 1, &at);
}

/* Reduces 'd' to the shape of 'x' (reverse of broadcasting). */
static DnValue *sum_to(DnAd *a, DnValue *d, const DnValue *x)
{
    if (!d || dn_shape_eq(&d->shape, &x->shape)) return d;
    DnAttr at = dn_ad_shape_attr(a, "shape", &x->shape);
    return dn_ad_build(a, DN_OP_SUM_TO, 1, &d, 1, &at);
}

static DnValue *matmul(DnAd *a, DnValue *x, DnValue *y, int ta, int tb)
{
    DnValue *in[2] = {x, y};
    DnAttr at[2] = {dn_attr_int("trans_a", ta), dn_attr_int("trans_b", tb)};
    return dn_ad_build(a, DN_OP_MATMUL, 2, in, 2, at);
}

/* Swaps the last two axes of 'x'. */
static DnValue *transpose_last2(DnAd *a, DnValue *x)
{
    if (!x) return NULL;
    int r = x->shape.rank;
    int64_t perm[DN_MAX_RANK];
    for (int i = 0; i < r; i++) perm[i] = i;
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    DnAttr at = dn_attr_ints("perm", r, perm);
    return dn_ad_build(a, DN_OP_TRANSPOSE, 1, &x, 1, &at);
}

/* Gradient through an optional "relu" epilogue (act attribute). */
static DnValue *through_act(DnAd *a, const DnOp *op, DnValue *dy)
{
    if (strcmp(dn_op_str(op, "act"), "relu") == 0) return b2(a, DN_OP_RELU_BWD, op->out[0], dy);
    return dy;
}

/* ---- convolution, pooling, dense, matmul --------------------------------- */

static void grad_conv2d(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *d = through_act(a, op, dy[0]), *x = op->in[0], *w = op->in[1];
    DnAttr at[5] = {
        *dn_op_attr(op, "stride"), *dn_op_attr(op, "pad"), *dn_op_attr(op, "dilation"), *dn_op_attr(op, "groups"), {0}};
    if (dn_ad_needs(a, x)) {
        at[4] = dn_ad_shape_attr(a, "shape", &x->shape);
        DnValue *in[2] = {d, w};
        dn_ad_acc(a, x, dn_ad_build(a, DN_OP_CONV2D_BWD_DATA, 2, in, 5, at));
    }
    if (dn_ad_needs(a, w)) {
        at[4] = dn_ad_shape_attr(a, "shape", &w->shape);
        DnValue *in[2] = {x, d};
        dn_ad_acc(a, w, dn_ad_build(a, DN_OP_CONV2D_BWD_FILTER, 2, in, 5, at));
    }
    if (op->nin > 2 && dn_ad_needs(a, op->in[2])) {
        DnShape s = dn_shape_make(4, (int64_t[]){1, op->in[2]->shape.dim[0], 1, 1});
        DnAttr sa = dn_ad_shape_attr(a, "shape", &s);
        DnValue *db = d ? dn_ad_build(a, DN_OP_SUM_TO, 1, &d, 1, &sa) : NULL;
        dn_ad_acc(a, op->in[2], reshape(a, db, &op->in[2]->shape));
    }
}

static void grad_maxpool2d(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *in[2] = {op->in[0], dy[0]};
    DnAttr at[4] = {*dn_op_attr(op, "kernel"), *dn_op_attr(op, "stride"), *dn_op_attr(op, "pad"),
                    *dn_op_attr(op, "ceil_mode")};
    dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_MAXPOOL2D_BWD, 2, in, 4, at));
}

static void grad_avgpool2d(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *d = dy[0];
    DnAttr at[4] = {*dn_op_attr(op, "kernel"), *dn_op_attr(op, "stride"), *dn_op_attr(op, "pad"),
                    dn_ad_shape_attr(a, "shape", &op->in[0]->shape)};
    dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_AVGPOOL2D_BWD, 1, &d, 4, at));
}

/* dW = dy^T x summed over every leading axis. */
static DnValue *dense_dw(DnAd *a, DnValue *d, DnValue *x, const DnValue *w)
{
    if (!d) return NULL;
    int r = x->shape.rank;
    if (r == 2) return matmul(a, d, x, 1, 0);
    if (!dn_shape_has_n(&x->shape)) { /* static: flatten the leading axes */
        int64_t rows = dn_shape_numel_static(&x->shape) / x->shape.dim[r - 1];
        DnShape sd = dn_shape_make(2, (int64_t[]){rows, d->shape.dim[r - 1]});
        DnShape sx = dn_shape_make(2, (int64_t[]){rows, x->shape.dim[r - 1]});
        return matmul(a, reshape(a, d, &sd), reshape(a, x, &sx), 1, 0);
    }
    return sum_to(a, matmul(a, d, x, 1, 0), w); /* batched, then summed */
}

static void grad_dense(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *d = through_act(a, op, dy[0]), *x = op->in[0], *w = op->in[1];
    if (dn_ad_needs(a, x)) dn_ad_acc(a, x, matmul(a, d, w, 0, 0));
    if (dn_ad_needs(a, w)) dn_ad_acc(a, w, dense_dw(a, d, x, w));
    if (op->nin > 2 && dn_ad_needs(a, op->in[2])) dn_ad_acc(a, op->in[2], sum_to(a, d, op->in[2]));
}

/* y = op(A) op(B): d op(A) = dy op(B)^T,  d op(B) = op(A)^T dy; a transposed
 * operand takes the transpose of its gradient.  Same-rank operands use the
 * direct forms (no transpose op). */
static void grad_matmul(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *x = op->in[0], *y = op->in[1], *d = dy[0];
    int ta = (int)dn_op_int(op, "trans_a"), tb = (int)dn_op_int(op, "trans_b");
    bool same = x->shape.rank == y->shape.rank;
    if (dn_ad_needs(a, x)) {
        DnValue *dx;
        if (!ta)
            dx = matmul(a, d, y, 0, !tb);
        else if (same)
            dx = tb ? matmul(a, y, d, 1, 1) : matmul(a, y, d, 0, 1);
        else
            dx = transpose_last2(a, matmul(a, d, y, 0, !tb));
        dn_ad_acc(a, x, dx);
    }
    if (dn_ad_needs(a, y)) {
        DnValue *dw;
        if (!tb)
            dw = matmul(a, x, d, !ta, 0);
        else
            dw = ta ? matmul(a, d, x, 1, 1) : matmul(a, d, x, 1, 0);
        dn_ad_acc(a, y, sum_to(a, dw, y));
    }
}

/* ---- elementwise ---------------------------------------------------------- */

static void grad_add(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    for (int i = 0; i < 2; i++)
        if (dn_ad_needs(a, op->in[i])) dn_ad_acc(a, op->in[i], sum_to(a, dy[0], op->in[i]));
}

static void grad_sub(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    if (dn_ad_needs(a, op->in[0])) dn_ad_acc(a, op->in[0], sum_to(a, dy[0], op->in[0]));
    if (dn_ad_needs(a, op->in[1])) dn_ad_acc(a, op->in[1], sum_to(a, scale(a, dy[0], -1.0), op->in[1]));
}

static void grad_mul(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    if (dn_ad_needs(a, op->in[0])) dn_ad_acc(a, op->in[0], sum_to(a, b2(a, DN_OP_MUL, dy[0], op->in[1]), op->in[0]));
    if (dn_ad_needs(a, op->in[1])) dn_ad_acc(a, op->in[1], sum_to(a, b2(a, DN_OP_MUL, dy[0], op->in[0]), op->in[1]));
}

/* y = a / b:  da = dy / b,  db = -dy * y / b. */
static void grad_div(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *x = op->in[0], *y = op->in[1];
    if (dn_ad_needs(a, x)) dn_ad_acc(a, x, sum_to(a, b2(a, DN_OP_DIV, dy[0], y), x));
    if (dn_ad_needs(a, y)) {
        DnValue *q = b2(a, DN_OP_DIV, op->out[0], y);
        dn_ad_acc(a, y, sum_to(a, scale(a, b2(a, DN_OP_MUL, dy[0], q), -1.0), y));
    }
}

static void grad_scale(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    dn_ad_acc(a, op->in[0], scale(a, dy[0], dn_op_float(op, "alpha")));
}

static void grad_relu(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    dn_ad_acc(a, op->in[0], b2(a, DN_OP_RELU_BWD, op->out[0], dy[0]));
}

static void grad_tanh(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    dn_ad_acc(a, op->in[0], b2(a, DN_OP_TANH_BWD, op->out[0], dy[0]));
}

static void grad_sigmoid(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    dn_ad_acc(a, op->in[0], b2(a, DN_OP_SIGMOID_BWD, op->out[0], dy[0]));
}

static void grad_softmax(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *in[2] = {op->out[0], dy[0]};
    DnAttr at = *dn_op_attr(op, "axis");
    dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_SOFTMAX_BWD, 2, in, 1, &at));
}

static void grad_log_softmax(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *in[2] = {op->out[0], dy[0]};
    DnAttr at = *dn_op_attr(op, "axis");
    dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_LOG_SOFTMAX_BWD, 2, in, 1, &at));
}

/* ---- shapes ----------------------------------------------------------------- */

static void grad_reshape(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    dn_ad_acc(a, op->in[0], reshape(a, dy[0], &op->in[0]->shape));
}

static void grad_copy(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    dn_ad_acc(a, op->in[0], dy[0]); /* y = x: dx = dy */
}

static void grad_transpose(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    int n;
    const int64_t *perm = dn_op_ints(op, "perm", &n);
    int64_t inv[DN_MAX_RANK];
    for (int i = 0; i < n; i++) inv[perm[i]] = i;
    DnAttr at = dn_attr_ints("perm", n, inv);
    DnValue *d = dy[0];
    dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_TRANSPOSE, 1, &d, 1, &at));
}

/* sum_to's gradient broadcasts dy back: zeros of x's shape + dy. */
static void grad_sum_to(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnAttr at[2] = {dn_attr_float("value", 0.0), dn_ad_shape_attr(a, "shape", &op->in[0]->shape)};
    DnValue *z = dn_build1(a->cx, a->g, DN_OP_FILL, 0, NULL, 2, at, a->loc);
    dn_ad_acc(a, op->in[0], b2(a, DN_OP_ADD, z, dy[0]));
}

/* ---- shape family: concat and slice -------------------------------------- */

static DnValue *slice_of(DnAd *a, DnValue *d, int64_t axis, int64_t start, int64_t stop)
{
    DnAttr at[3] = {dn_attr_int("axis", axis), dn_attr_int("start", start), dn_attr_int("stop", stop)};
    return d ? dn_ad_build(a, DN_OP_SLICE, 1, &d, 3, at) : NULL;
}

/* y = cat(x_i): dx_i = the slice of dy where x_i went. */
static void grad_concat(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    int64_t axis = dn_op_int(op, "axis"), at = 0;
    for (int i = 0; i < op->nin; i++) {
        int64_t len = op->in[i]->shape.dim[axis];
        if (dn_ad_needs(a, op->in[i])) dn_ad_acc(a, op->in[i], slice_of(a, dy[0], axis, at, at + len));
        at += len;
    }
}

/* y = x[start:stop:step]: dx = dy scattered into zeros of x's shape. */
static void grad_slice(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *d = dy[0];
    DnAttr at[5] = {*dn_op_attr(op, "axis"), *dn_op_attr(op, "start"), *dn_op_attr(op, "stop"), *dn_op_attr(op, "step"),
                    dn_ad_shape_attr(a, "shape", &op->in[0]->shape)};
    dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_SLICE_BWD, 1, &d, 5, at));
}

/* ---- training ops and losses -------------------------------------------- */

static void grad_dropout(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *d = dy[0];
    DnAttr at[2] = {*dn_op_attr(op, "p"), *dn_op_attr(op, "salt")};
    dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_DROPOUT_BWD, 1, &d, 2, at));
}

static void grad_batchnorm_train(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    if (!dy[0]) return; /* gradients through the saved statistics: none used */
    DnValue *in[5] = {op->in[0], op->in[1], op->out[1], op->out[2], dy[0]};
    DnOp *b = NULL;
    bool ok = true;
    for (int i = 0; i < 5; i++) ok &= in[i] != NULL;
    if (ok) b = dn_build(a->cx, a->g, DN_OP_BATCHNORM_BWD, 5, in, 0, NULL, a->loc);
    for (int i = 0; i < 3; i++) dn_ad_acc(a, op->in[i], b ? b->out[i] : NULL);
}

/* dx from layernorm_bwd; dweight and dbias from layernorm_bwd_params (one
 * op for both, only when the layer has them). */
static void grad_layernorm(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    if (!dy[0]) return; /* the statistics feed nothing that needs a gradient */
    DnAttr at = *dn_op_attr(op, "dims");
    bool affine = op->nin == 3;
    if (dn_ad_needs(a, op->in[0])) {
        DnValue *in[4] = {op->in[0], op->out[1], dy[0], affine ? op->in[1] : NULL};
        dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_LAYERNORM_BWD, affine ? 4 : 3, in, 1, &at));
    }
    if (affine && (dn_ad_needs(a, op->in[1]) || dn_ad_needs(a, op->in[2]))) {
        DnValue *in[3] = {op->in[0], op->out[1], dy[0]};
        DnOp *b = dn_build(a->cx, a->g, DN_OP_LAYERNORM_BWD_PARAMS, 3, in, 1, &at, a->loc);
        dn_ad_acc(a, op->in[1], b ? b->out[0] : NULL);
        dn_ad_acc(a, op->in[2], b ? b->out[1] : NULL);
    }
}

/* dq, dk, dv from one flash_attention_bwd, which recomputes the weights
 * from the saved log-sum-exp (result 1, which nothing else reads).  A bias
 * that needs a gradient is an error: the kernels do not produce one. */
static void grad_flash_attention(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    if (!dy[0]) return;
    if (op->nin == 4 && dn_ad_needs(a, op->in[3])) {
        dn_error(a->cx, op->loc,
                 "flash_attention: its bias depends on a trainable weight, which it has no gradient for");
        a->failed = true;
        return;
    }
    DnValue *in[7] = {op->in[0], op->in[1], op->in[2], op->out[0], op->out[1], dy[0], op->nin == 4 ? op->in[3] : NULL};
    DnAttr at[4] = {*dn_op_attr(op, "scale"), *dn_op_attr(op, "causal"), *dn_op_attr(op, "block_q"),
                    *dn_op_attr(op, "block_k")};
    DnOp *b = dn_build(a->cx, a->g, DN_OP_FLASH_ATTENTION_BWD, op->nin == 4 ? 7 : 6, in, 4, at, a->loc);
    for (int i = 0; i < 3; i++) dn_ad_acc(a, op->in[i], b ? b->out[i] : NULL);
}

static void grad_cross_entropy(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *in[3] = {op->in[0], op->in[1], dy[0]};
    DnAttr at[2] = {*dn_op_attr(op, "smoothing"), *dn_op_attr(op, "ignore_index")};
    dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_CROSS_ENTROPY_BWD, 3, in, 2, at));
}

static void grad_mse(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *in[3] = {op->in[0], op->in[1], dy[0]};
    DnValue *dp = dn_ad_build(a, DN_OP_MSE_BWD, 3, in, 0, NULL);
    dn_ad_acc(a, op->in[0], dp); /* no-op unless pred needs it */
    if (dn_ad_needs(a, op->in[1])) dn_ad_acc(a, op->in[1], scale(a, dp, -1.0));
}

/* ---- activations and adaptive pooling: the backwards read the input x ------- */

static void grad_leaky_relu(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *in[2] = {op->in[0], dy[0]};
    DnAttr at = *dn_op_attr(op, "negative_slope");
    dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_LEAKY_RELU_BWD, 2, in, 1, &at));
}

static void grad_elu(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *in[2] = {op->in[0], dy[0]};
    DnAttr at = *dn_op_attr(op, "alpha");
    dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_ELU_BWD, 2, in, 1, &at));
}

static void grad_gelu(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *in[2] = {op->in[0], dy[0]};
    DnAttr at = *dn_op_attr(op, "approximate");
    dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_GELU_BWD, 2, in, 1, &at));
}

static void grad_adaptive_avgpool2d(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *d = dy[0];
    DnAttr at = dn_ad_shape_attr(a, "shape", &op->in[0]->shape);
    dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_ADAPTIVE_AVGPOOL2D_BWD, 1, &d, 1, &at));
}

static void grad_adaptive_maxpool2d(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *in[2] = {op->in[0], dy[0]};
    dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_ADAPTIVE_MAXPOOL2D_BWD, 2, in, 0, NULL));
}

/* ---- resizing ----------------------------------------------------------------- */

static void grad_interpolate(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *d = dy[0];
    DnAttr at[2] = {*dn_op_attr(op, "mode"), dn_ad_shape_attr(a, "shape", &op->in[0]->shape)};
    dn_ad_acc(a, op->in[0], dn_ad_build(a, DN_OP_INTERPOLATE_BWD, 1, &d, 2, at));
}

/* ---- embeddings and sequences -------------------------------------------- */

/* dweight = embedding_bwd(indices, dy); the indices (integers) get none. */
static void grad_embedding(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    DnValue *w = op->in[1];
    if (!dn_ad_needs(a, w)) return;
    DnValue *in[2] = {op->in[0], dy[0]};
    DnAttr at[2] = {dn_attr_int("num", w->shape.dim[0]), *dn_op_attr(op, "padding_idx")};
    dn_ad_acc(a, w, dn_ad_build(a, DN_OP_EMBEDDING_BWD, 2, in, 2, at));
}

/* ---- recurrent layers ------------------------------------------------------ */

/* zeros of the type of 'v' */
static DnValue *zeros_like(DnAd *a, const DnValue *v)
{
    DnAttr at[2] = {dn_attr_float("value", 0.0), dn_ad_shape_attr(a, "shape", &v->shape)};
    return dn_build1(a->cx, a->g, DN_OP_FILL, 0, NULL, 2, at, a->loc);
}

/* rnn_scan_bwd gives dxg, dhg and ds0 (ir/rnn_cell.h; zeros for a missing
 * dy or ds); dW_hh = the sum over n, t of dhg^T h_prev (save slot 0) and
 * db_hh = the sum of dhg, as a dense's; the mask gets none. */
static void grad_rnn_scan(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    if (!dy[0] && !dy[1]) return;
    DnValue *xg = op->in[0], *w = op->in[1], *bias = op->in[2], *s0 = op->in[3], *save = op->out[2];
    DnValue *in[5] = {dy[0] ? dy[0] : zeros_like(a, op->out[0]), dy[1] ? dy[1] : zeros_like(a, op->out[1]), save, w,
                      op->nin > 4 ? op->in[4] : NULL};
    int nin = op->nin > 4 ? 5 : 4;
    DnAttr at[2] = {*dn_op_attr(op, "cell"), *dn_op_attr(op, "reverse")};
    DnOp *b = NULL;
    bool ok = true;
    for (int i = 0; i < nin; i++) ok &= in[i] != NULL;
    if (ok) b = dn_build(a->cx, a->g, DN_OP_RNN_SCAN_BWD, nin, in, 2, at, a->loc);
    DnValue *dxg = b ? b->out[0] : NULL, *dhg = b ? b->out[1] : NULL;
    dn_ad_acc(a, xg, dxg);
    if (dn_ad_needs(a, w)) dn_ad_acc(a, w, dense_dw(a, dhg, slice_of(a, save, 2, 0, w->shape.dim[1]), w));
    if (dn_ad_needs(a, bias)) dn_ad_acc(a, bias, sum_to(a, dhg, bias));
    dn_ad_acc(a, s0, b ? b->out[2] : NULL);
}

/* A decoding step is inference only: its cache is session state, not a
 * function of the weights that a backward could follow. */
static void grad_cached_attention(DnAd *a, const DnOp *op, DnValue *const *dy)
{
    if (!dy[0]) return;
    dn_error(a->cx, op->loc,
             "cached_attention: a decoding step with a KV cache has no gradient (train the model without cache=, "
             "then run the step model for inference)");
    a->failed = true;
}

/* ---- the table ---------------------------------------------------------------
 * ORDER DN_OP: one line per op of ops.def.  NONE: no gradient (fill has no
 * operands; augmentations only ever apply to model inputs; batchnorm is
 * replaced by batchnorm_train before autodiff; the backward ops, the
 * updates and the guards are never differentiated). */
#define NONE                      NULL
#define GRAD_CONV2D               grad_conv2d
#define GRAD_MAXPOOL2D            grad_maxpool2d
#define GRAD_AVGPOOL2D            grad_avgpool2d
#define GRAD_DENSE                grad_dense
#define GRAD_MATMUL               grad_matmul
#define GRAD_ADD                  grad_add
#define GRAD_SUB                  grad_sub
#define GRAD_MUL                  grad_mul
#define GRAD_DIV                  grad_div
#define GRAD_SCALE                grad_scale
#define GRAD_RELU                 grad_relu
#define GRAD_TANH                 grad_tanh
#define GRAD_SIGMOID              grad_sigmoid
#define GRAD_SOFTMAX              grad_softmax
#define GRAD_LOG_SOFTMAX          grad_log_softmax
#define GRAD_RESHAPE              grad_reshape
#define GRAD_TRANSPOSE            grad_transpose
#define GRAD_COPY                 grad_copy
#define GRAD_FILL                 NONE
#define GRAD_SUM_TO               grad_sum_to
#define GRAD_CONCAT               grad_concat
#define GRAD_SLICE                grad_slice
#define GRAD_DROPOUT              grad_dropout
#define GRAD_RANDOM_FLIP          NONE /* augmentations apply to inputs, which need no gradient */
#define GRAD_RANDOM_CROP          NONE
#define GRAD_RANDOM_RESIZED_CROP  NONE
#define GRAD_COLOR_JITTER         NONE
#define GRAD_PCA_LIGHTING         NONE
#define GRAD_BATCHNORM            NONE
#define GRAD_BATCHNORM_TRAIN      grad_batchnorm_train
#define GRAD_CROSS_ENTROPY        grad_cross_entropy
#define GRAD_MSE                  grad_mse
#define GRAD_CONV2D_BWD_DATA      NONE
#define GRAD_CONV2D_BWD_FILTER    NONE
#define GRAD_MAXPOOL2D_BWD        NONE
#define GRAD_AVGPOOL2D_BWD        NONE
#define GRAD_SLICE_BWD            NONE
#define GRAD_RELU_BWD             NONE
#define GRAD_TANH_BWD             NONE
#define GRAD_SIGMOID_BWD          NONE
#define GRAD_SOFTMAX_BWD          NONE
#define GRAD_LOG_SOFTMAX_BWD      NONE
#define GRAD_DROPOUT_BWD          NONE
#define GRAD_BATCHNORM_BWD        NONE
#define GRAD_CROSS_ENTROPY_BWD    NONE
#define GRAD_MSE_BWD              NONE
#define GRAD_EMBEDDING            grad_embedding
#define GRAD_EMBEDDING_BWD        NONE
#define GRAD_SEQUENCE_MASK        NONE /* its input is integer */
#define GRAD_RNN_SCAN             grad_rnn_scan
#define GRAD_RNN_SCAN_BWD         NONE
#define GRAD_SGD_UPDATE           NONE
#define GRAD_ADAM_UPDATE          NONE
#define GRAD_CHECK_FINITE         NONE
#define GRAD_CAUSAL_BIAS          NONE /* a constant */
#define GRAD_SINUSOID             NONE /* a constant */
#define GRAD_LAYERNORM            grad_layernorm
#define GRAD_LAYERNORM_BWD        NONE
#define GRAD_LAYERNORM_BWD_PARAMS NONE
#define GRAD_FLASH_ATTENTION      grad_flash_attention
#define GRAD_FLASH_ATTENTION_BWD  NONE
#define GRAD_CACHED_ATTENTION     grad_cached_attention

/* activations and adaptive pooling */
#define GRAD_LEAKY_RELU             grad_leaky_relu
#define GRAD_ELU                    grad_elu
#define GRAD_GELU                   grad_gelu
#define GRAD_ADAPTIVE_AVGPOOL2D     grad_adaptive_avgpool2d
#define GRAD_ADAPTIVE_MAXPOOL2D     grad_adaptive_maxpool2d
#define GRAD_LEAKY_RELU_BWD         NONE
#define GRAD_ELU_BWD                NONE
#define GRAD_GELU_BWD               NONE
#define GRAD_ADAPTIVE_AVGPOOL2D_BWD NONE
#define GRAD_ADAPTIVE_MAXPOOL2D_BWD NONE

/* resizing */
#define GRAD_INTERPOLATE     grad_interpolate
#define GRAD_INTERPOLATE_BWD NONE

const DnGradRule dn_grad_rules[DN_OP_COUNT] = {
#define OP(E, name, mi, ma, no, fl, at) [DN_OP_##E] = GRAD_##E,
#include "ops.def"
#undef OP
};
