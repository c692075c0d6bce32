/* test_ir.c -- the IR core: builder shape inference for every op kind and
 * its error messages, attribute defaults, broadcasting with N, the
 * verifier, clone and use helpers, and the text form (print/read round
 * trip, reader errors, no crash on damaged text). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ir/ir.h"

#define N           DN_DIM_N
#define F32         DN_DTYPE_F32
#define I32         DN_DTYPE_I32
#define DIMS(...)   ((int64_t[]){__VA_ARGS__})
#define NDIMS(...)  ((int)(sizeof(DIMS(__VA_ARGS__)) / sizeof(int64_t)))
#define SHAPE(...)  dn_shape_make(NDIMS(__VA_ARGS__), DIMS(__VA_ARGS__))
#define VALS(...)   ((DnValue *[]){__VA_ARGS__})
#define NVALS(...)  ((int)(sizeof(VALS(__VA_ARGS__)) / sizeof(DnValue *)))
#define ATTRS(...)  ((DnAttr[]){__VA_ARGS__})
#define NATTRS(...) ((int)(sizeof(ATTRS(__VA_ARGS__)) / sizeof(DnAttr)))
/* OP(kind, (operands...), attrs...) -> first result (or NULL) */
#define B0(kind, ...) dn_build1(&cx, g, DN_OP_##kind, NVALS(__VA_ARGS__), VALS(__VA_ARGS__), 0, NULL, loc)
#define BA(kind, ins, ...)                                                                                             \
    dn_build1(&cx, g, DN_OP_##kind, NVALS ins, VALS ins, NATTRS(__VA_ARGS__), ATTRS(__VA_ARGS__), loc)
#define BOP(kind, ins, ...)                                                                                            \
    dn_build(&cx, g, DN_OP_##kind, NVALS ins, VALS ins, NATTRS(__VA_ARGS__), ATTRS(__VA_ARGS__), loc)
#define I(n, v)    dn_attr_int(n, v)
#define FL(n, v)   dn_attr_float(n, v)
#define S(n, v)    dn_attr_str(n, v)
#define IS(n, ...) dn_attr_ints(n, NDIMS(__VA_ARGS__), DIMS(__VA_ARGS__))

static DnCtx cx;
static DnGraph *g;
static const DnLoc loc = {"t.dnn", 3, 7};

static void setup(void)
{
    dn_ctx_init(&cx);
    g = dn_graph_new("t");
}

static void teardown(void)
{
    dn_graph_free(g);
    dn_ctx_free(&cx);
}

static DnValue *input(const char *name, DnDType t, DnShape s) { return dn_graph_add_input(g, name, t, &s, loc); }

static DnValue *param(const char *name, DnShape s)
{
    return dn_graph_add_param(g, name, DN_PARAM_WEIGHT, F32, &s, (DnInit){.kind = DN_INIT_UNIFORM, .a = -0.1, .b = 0.1},
                              loc)
        ->value;
}

/* The type of 'v' as text ("NULL" when v is NULL); rotating static buffers. */
static const char *ty(const DnValue *v)
{
    static char buf[8][96];
    static int k;
    char *b = buf[k++ & 7];
    if (!v) return "NULL";
    return dn_type_str(v->dtype, &v->shape, b, 96);
}

static const char *first_error(void) { return cx.diags ? cx.diags->msg : "(no diagnostic)"; }

#define EXPECT_TYPE(v, str) cr_expect_str_eq(ty(v), str, "line %d: %s", __LINE__, first_error())
#define EXPECT_ERROR(v, str)                                                                                           \
    do {                                                                                                               \
        cr_expect_null(v, "line %d: expected an error", __LINE__);                                                     \
        cr_expect_str_eq(first_error(), str, "line %d", __LINE__);                                                     \
    } while (0)

static char *print_str(const DnGraph *gr)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    dn_graph_print(gr, f);
    fclose(f);
    return s;
}

/* ---- every op kind ---------------------------------------------------------- */

/* Builds into 'g' a graph that uses every op kind once or more, checking
 * each result type; marks the kinds it built in 'seen'. */
static void build_all(bool *seen)
{
    DnValue *x = input("x", F32, SHAPE(N, 3, 8, 8));
    DnValue *label = input("label", I32, SHAPE(N));
    label->train_only = true;
    DnValue *t3 = input("t3", F32, SHAPE(N, 5, 8));
    DnValue *col = input("col", F32, SHAPE(N, 1));
    DnValue *w = param("conv.weight", SHAPE(4, 3, 3, 3)), *b = param("conv.bias", SHAPE(4));
    DnValue *wg = param("convg.weight", SHAPE(4, 1, 3, 3));
    DnValue *fcw = param("fc.weight", SHAPE(10, 64)), *fcb = param("fc.bias", SHAPE(10));
    DnValue *mw = param("mm.weight", SHAPE(64, 10)), *one = param("one", SHAPE(1));
    DnValue *gam = param("bn.weight", SHAPE(4)), *bet = param("bn.bias", SHAPE(4));
    DnValue *rm = param("bn.running_mean", SHAPE(4)), *rv = param("bn.running_var", SHAPE(4));
    DnValue *buf = param("optim.conv.weight.buf", SHAPE(4, 3, 3, 3));
    DnValue *am = param("optim.fc.weight.m", SHAPE(10, 64)), *av = param("optim.fc.weight.v", SHAPE(10, 64));

    DnValue *c = BA(CONV2D, (x, w, b), IS("pad", 1));
    EXPECT_TYPE(c, "f32[N, 4, 8, 8]");
    EXPECT_TYPE(BA(CONV2D, (c, wg), I("groups", 4), IS("stride", 2, 1), IS("dilation", 2)), "f32[N, 4, 2, 4]");
    DnValue *mp = BA(MAXPOOL2D, (c), IS("kernel", 2));
    EXPECT_TYPE(mp, "f32[N, 4, 4, 4]");
    DnValue *ap = BA(AVGPOOL2D, (c), IS("kernel", 3), IS("stride", 1), IS("pad", 1));
    EXPECT_TYPE(ap, "f32[N, 4, 8, 8]");
    DnValue *r = BA(RESHAPE, (mp), IS("shape", -1, 64));
    EXPECT_TYPE(r, "f32[N, 64]");
    DnValue *d = B0(DENSE, r, fcw, fcb);
    EXPECT_TYPE(d, "f32[N, 10]");
    DnValue *m1 = B0(MATMUL, r, mw);
    EXPECT_TYPE(m1, "f32[N, 10]");
    EXPECT_TYPE(BA(MATMUL, (t3, t3), I("trans_b", 1)), "f32[N, 5, 5]");
    EXPECT_TYPE(BA(MATMUL, (r, r), I("trans_a", 1)), "f32[64, 64]");
    DnValue *a = B0(ADD, d, m1);
    EXPECT_TYPE(a, "f32[N, 10]");
    EXPECT_TYPE(B0(SUB, d, fcb), "f32[N, 10]");
    EXPECT_TYPE(B0(MUL, d, one), "f32[N, 10]");
    EXPECT_TYPE(B0(DIV, d, col), "f32[N, 10]");
    DnValue *sc = BA(SCALE, (a), FL("alpha", 0.5));
    EXPECT_TYPE(sc, "f32[N, 10]");
    DnValue *rl = B0(RELU, sc), *th = B0(TANH, rl), *sg = B0(SIGMOID, th);
    EXPECT_TYPE(sg, "f32[N, 10]");
    DnValue *sm = B0(SOFTMAX, sg);
    EXPECT_TYPE(sm, "f32[N, 10]");
    DnValue *ls = BA(LOG_SOFTMAX, (sm), I("axis", -1));
    EXPECT_TYPE(ls, "f32[N, 10]");
    cr_expect_eq(dn_op_int(ls->def, "axis"), 1);
    EXPECT_TYPE(BA(TRANSPOSE, (c), IS("perm", 0, 2, 3, 1)), "f32[N, 8, 8, 4]");
    EXPECT_TYPE(B0(COPY, c), "f32[N, 4, 8, 8]");
    EXPECT_TYPE(B0(COPY, label), "i32[N]");
    DnValue *fl = BA(FILL, (), FL("value", 1.5), IS("shape", -1, 10));
    EXPECT_TYPE(fl, "f32[N, 10]");
    EXPECT_TYPE(BA(SUM_TO, (a), IS("shape", 10)), "f32[10]");
    /* shape family: concat, slice, slice_bwd */
    EXPECT_TYPE(BA(CONCAT, (c, c, x), I("axis", 1)), "f32[N, 11, 8, 8]");
    DnValue *sl = BA(SLICE, (c), I("axis", -1), I("start", 1), I("stop", 8), I("step", 3));
    EXPECT_TYPE(sl, "f32[N, 4, 8, 3]");
    cr_expect_eq(dn_op_int(sl->def, "axis"), 3);
    EXPECT_TYPE(BA(SLICE_BWD, (sl), I("axis", 3), I("start", 1), I("stop", 8), I("step", 3), IS("shape", -1, 4, 8, 8)),
                "f32[N, 4, 8, 8]");
    DnValue *dr = BA(DROPOUT, (ls), FL("p", 0.25), I("salt", 7));
    EXPECT_TYPE(dr, "f32[N, 10]");
    EXPECT_TYPE(BA(RANDOM_FLIP, (x), I("salt", 8)), "f32[N, 3, 8, 8]");
    EXPECT_TYPE(BA(RANDOM_CROP, (x), IS("size", 6, 5), I("pad", 2), I("salt", 9)), "f32[N, 3, 6, 5]");
    EXPECT_TYPE(BA(RANDOM_RESIZED_CROP, (x), IS("size", 4, 4), I("salt", 10)), "f32[N, 3, 4, 4]");
    EXPECT_TYPE(BA(COLOR_JITTER, (x), FL("brightness", 0.2), I("salt", 11)), "f32[N, 3, 8, 8]");
    EXPECT_TYPE(BA(PCA_LIGHTING, (x), I("salt", 12)), "f32[N, 3, 8, 8]");
    EXPECT_TYPE(B0(BATCHNORM, c, gam, bet, rm, rv), "f32[N, 4, 8, 8]");
    DnOp *bt = dn_build(&cx, g, DN_OP_BATCHNORM_TRAIN, 5, VALS(c, gam, bet, rm, rv), 0, NULL, loc);
    cr_assert_not_null(bt, "%s", first_error());
    cr_expect_eq(bt->nout, 3);
    EXPECT_TYPE(bt->out[0], "f32[N, 4, 8, 8]");
    EXPECT_TYPE(bt->out[1], "f32[4]");
    EXPECT_TYPE(bt->out[2], "f32[4]");
    DnValue *ce = B0(CROSS_ENTROPY, dr, label);
    EXPECT_TYPE(ce, "f32[]");
    DnValue *ms = B0(MSE, d, fl);
    EXPECT_TYPE(ms, "f32[]");
    EXPECT_TYPE(BA(CONV2D_BWD_DATA, (c, w), IS("pad", 1), IS("shape", -1, 3, 8, 8)), "f32[N, 3, 8, 8]");
    DnValue *dw = BA(CONV2D_BWD_FILTER, (x, c), IS("pad", 1), IS("shape", 4, 3, 3, 3));
    EXPECT_TYPE(dw, "f32[4, 3, 3, 3]");
    EXPECT_TYPE(BA(MAXPOOL2D_BWD, (c, mp), IS("kernel", 2)), "f32[N, 4, 8, 8]");
    EXPECT_TYPE(BA(AVGPOOL2D_BWD, (ap), IS("kernel", 3), IS("stride", 1), IS("pad", 1), IS("shape", -1, 4, 8, 8)),
                "f32[N, 4, 8, 8]");
    EXPECT_TYPE(B0(RELU_BWD, rl, a), "f32[N, 10]");
    EXPECT_TYPE(B0(TANH_BWD, th, a), "f32[N, 10]");
    EXPECT_TYPE(B0(SIGMOID_BWD, sg, a), "f32[N, 10]");
    EXPECT_TYPE(B0(SOFTMAX_BWD, sm, a), "f32[N, 10]");
    EXPECT_TYPE(B0(LOG_SOFTMAX_BWD, ls, a), "f32[N, 10]");
    EXPECT_TYPE(BA(DROPOUT_BWD, (a), FL("p", 0.25), I("salt", 7)), "f32[N, 10]");
    DnOp *bb = dn_build(&cx, g, DN_OP_BATCHNORM_BWD, 5, VALS(c, gam, bt->out[1], bt->out[2], c), 0, NULL, loc);
    cr_assert_not_null(bb, "%s", first_error());
    EXPECT_TYPE(bb->out[0], "f32[N, 4, 8, 8]");
    EXPECT_TYPE(bb->out[2], "f32[4]");
    EXPECT_TYPE(B0(CROSS_ENTROPY_BWD, dr, label, ce), "f32[N, 10]");
    EXPECT_TYPE(B0(MSE_BWD, d, fl, ms), "f32[N, 10]");
    DnValue *emb = BA(EMBEDDING, (label, fcw), I("padding_idx", 0));
    EXPECT_TYPE(emb, "f32[N, 64]");
    EXPECT_TYPE(BA(EMBEDDING_BWD, (label, emb), I("num", 10)), "f32[10, 64]");
    EXPECT_TYPE(BA(SEQUENCE_MASK, (label), I("max_len", 6)), "f32[N, 6]");
    EXPECT_TYPE(BA(CAUSAL_BIAS, (), I("rows", 3), I("cols", 5)), "f32[3, 5]");
    EXPECT_TYPE(BA(SINUSOID, (), I("rows", 7), I("cols", 4)), "f32[7, 4]");
    DnValue *lnw = param("ln.weight", SHAPE(5, 8)), *lnb = param("ln.bias", SHAPE(5, 8));
    DnOp *ln = BOP(LAYERNORM, (t3, lnw, lnb), I("dims", 2));
    cr_assert_not_null(ln, "%s", first_error());
    EXPECT_TYPE(ln->out[0], "f32[N, 5, 8]");
    EXPECT_TYPE(ln->out[1], "f32[N, 2]");
    EXPECT_TYPE(BA(LAYERNORM_BWD, (t3, ln->out[1], ln->out[0], lnw), I("dims", 2)), "f32[N, 5, 8]");
    DnOp *lnp = BOP(LAYERNORM_BWD_PARAMS, (t3, ln->out[1], ln->out[0]), I("dims", 2));
    cr_assert_not_null(lnp, "%s", first_error());
    EXPECT_TYPE(lnp->out[1], "f32[5, 8]");
    DnValue *aq = input("aq", F32, SHAPE(N, 2, 5, 4)), *ak = input("ak", F32, SHAPE(N, 2, 7, 4));
    DnValue *avv = input("av", F32, SHAPE(N, 2, 7, 3)), *ab = input("ab", F32, SHAPE(N, 1, 1, 7));
    DnOp *fa = BOP(FLASH_ATTENTION, (aq, ak, avv, ab), FL("scale", 0.5), I("causal", 1));
    cr_assert_not_null(fa, "%s", first_error());
    EXPECT_TYPE(fa->out[0], "f32[N, 2, 5, 3]");
    EXPECT_TYPE(fa->out[1], "f32[N, 2, 5]");
    DnOp *fab = BOP(FLASH_ATTENTION_BWD, (aq, ak, avv, fa->out[0], fa->out[1], fa->out[0], ab), FL("scale", 0.5));
    cr_assert_not_null(fab, "%s", first_error());
    EXPECT_TYPE(fab->out[1], "f32[N, 2, 7, 4]");
    EXPECT_TYPE(fab->out[2], "f32[N, 2, 7, 3]");
    DnValue *cq = input("cq", F32, SHAPE(2, 1, 6)), *cpos = input("cpos", I32, SHAPE(2, 1));
    DnShape cs = SHAPE(2, 9, 6);
    DnValue *kc = dn_graph_add_param(g, "kc", DN_PARAM_CACHE, F32, &cs, (DnInit){0}, loc)->value;
    DnValue *vc = dn_graph_add_param(g, "vc", DN_PARAM_CACHE, F32, &cs, (DnInit){0}, loc)->value;
    DnOp *ca = BOP(CACHED_ATTENTION, (cq, cq, cq, kc, vc, cpos), I("heads", 3), FL("scale", 0.5));
    cr_assert_not_null(ca, "%s", first_error());
    EXPECT_TYPE(ca->out[0], "f32[2, 1, 6]");
    DnOp *sp = BOP(SINUSOID, (cpos), I("rows", 9), I("cols", 6));
    cr_assert_not_null(sp, "%s", first_error());
    EXPECT_TYPE(sp->out[0], "f32[2, 1, 6]");
    DnValue *whh = param("lstm.weight_hh_l0", SHAPE(8, 2)), *bhh = param("lstm.bias_hh_l0", SHAPE(8));
    DnValue *s0 = input("s0", F32, SHAPE(N, 4)), *mk = BA(SEQUENCE_MASK, (label), I("max_len", 5));
    DnOp *scan = BOP(RNN_SCAN, (t3, whh, bhh, s0, mk), S("cell", "lstm"));
    cr_assert_not_null(scan, "%s", first_error());
    EXPECT_TYPE(scan->out[0], "f32[N, 5, 2]");
    EXPECT_TYPE(scan->out[1], "f32[N, 4]");
    EXPECT_TYPE(scan->out[2], "f32[N, 5, 14]");
    DnOp *sbwd = BOP(RNN_SCAN_BWD, (scan->out[0], scan->out[1], scan->out[2], whh, mk), S("cell", "lstm"));
    cr_assert_not_null(sbwd, "%s", first_error());
    EXPECT_TYPE(sbwd->out[0], "f32[N, 5, 8]");
    EXPECT_TYPE(sbwd->out[2], "f32[N, 4]");
    DnOp *sgd = BOP(SGD_UPDATE, (w, dw, buf), FL("lr", 0.1), FL("momentum", 0.9));
    cr_assert_not_null(sgd, "%s", first_error());
    cr_expect_eq(sgd->nout, 0);
    DnValue *gw = BA(MATMUL, (d, r), I("trans_a", 1));
    EXPECT_TYPE(gw, "f32[10, 64]");
    cr_expect_not_null(BOP(ADAM_UPDATE, (fcw, gw, am, av), S("sched", "cosine"), I("total_steps", 100)), "%s",
                       first_error());
    DnValue *ok = BA(CHECK_FINITE, (ce, gw, c), IS("codes", 1, 2, 3));
    EXPECT_TYPE(ok, "i32[]");
    EXPECT_TYPE(BA(CHECK_FINITE, (dw, ok), IS("codes", 4)), "i32[]");

    /* activations and adaptive pooling */
    DnValue *lk = BA(LEAKY_RELU, (c), FL("negative_slope", 0.2)), *el = B0(ELU, lk);
    DnValue *ge = BA(GELU, (el), S("approximate", "tanh"));
    EXPECT_TYPE(ge, "f32[N, 4, 8, 8]");
    DnValue *aa = BA(ADAPTIVE_AVGPOOL2D, (c), IS("out", 3, 5)), *ax = BA(ADAPTIVE_MAXPOOL2D, (c), IS("out", 9, 2));
    EXPECT_TYPE(aa, "f32[N, 4, 3, 5]");
    EXPECT_TYPE(ax, "f32[N, 4, 9, 2]");
    EXPECT_TYPE(B0(LEAKY_RELU_BWD, c, lk), "f32[N, 4, 8, 8]");
    EXPECT_TYPE(BA(ELU_BWD, (lk, el), FL("alpha", 0.5)), "f32[N, 4, 8, 8]");
    EXPECT_TYPE(B0(GELU_BWD, el, ge), "f32[N, 4, 8, 8]");
    EXPECT_TYPE(BA(ADAPTIVE_AVGPOOL2D_BWD, (aa), IS("shape", -1, 4, 8, 8)), "f32[N, 4, 8, 8]");
    EXPECT_TYPE(B0(ADAPTIVE_MAXPOOL2D_BWD, c, ax), "f32[N, 4, 8, 8]");

    /* resizing, and maxpool2d's ceil_mode (8 -> 3x3 stride 2: floor 3, ceil 4) */
    DnValue *up = BA(INTERPOLATE, (c), IS("size", 13, 5)),
            *dn = BA(INTERPOLATE, (c), IS("size", 3, 3), S("mode", "nearest"));
    EXPECT_TYPE(up, "f32[N, 4, 13, 5]");
    EXPECT_TYPE(dn, "f32[N, 4, 3, 3]");
    EXPECT_TYPE(BA(INTERPOLATE_BWD, (up), IS("shape", -1, 4, 8, 8)), "f32[N, 4, 8, 8]");
    EXPECT_TYPE(BA(MAXPOOL2D, (c), IS("kernel", 3), IS("stride", 2)), "f32[N, 4, 3, 3]");
    DnValue *mc = BA(MAXPOOL2D, (c), IS("kernel", 3), IS("stride", 2), I("ceil_mode", 1));
    EXPECT_TYPE(mc, "f32[N, 4, 4, 4]");
    EXPECT_TYPE(BA(MAXPOOL2D_BWD, (c, mc), IS("kernel", 3), IS("stride", 2), I("ceil_mode", 1)), "f32[N, 4, 8, 8]");

    dn_graph_add_output(g, "logits", d);
    dn_graph_add_output(g, "probs", sm);
    g->loss = ce;
    g->optim = dn_arena_alloc(&g->arena, sizeof *g->optim);
    g->optim->kind = DN_OP_SGD_UPDATE;
    g->optim->loc = loc;
    g->optim->attrs = dn_attrs_complete(&cx, g, DN_OP_SGD_UPDATE, NULL, 2, ATTRS(FL("lr", 0.05), FL("momentum", 0.9)),
                                        loc, &g->optim->nattrs);
    cr_assert_not_null(g->optim->attrs);
    for (int i = 0; i < g->ops.len; i++) seen[g->ops.data[i]->kind] = true;
}

TestSuite(build, .init = setup, .fini = teardown);

Test(build, every_op_kind_infers_its_shape)
{
    bool seen[DN_OP_COUNT] = {0};
    build_all(seen);
    cr_expect_eq(cx.nerr, 0, "%s", first_error());
    for (int k = 0; k < DN_OP_COUNT; k++) cr_expect(seen[k], "op %s is not covered", dn_op_info[k].name);
    cr_expect_eq(dn_verify(&cx, g), DN_OK, "%s", first_error());
}

Test(build, op_table_and_lookup)
{
    cr_expect_eq(dn_op_lookup("conv2d"), DN_OP_CONV2D);
    cr_expect_eq(dn_op_lookup("adam_update"), DN_OP_ADAM_UPDATE);
    cr_expect_eq(dn_op_lookup("nope"), DN_OP_COUNT);
    cr_expect_str_eq(dn_op_info[DN_OP_LOG_SOFTMAX].name, "log_softmax");
    cr_expect_eq(dn_op_info[DN_OP_CONV2D].min_in, 2);
    cr_expect_eq(dn_op_info[DN_OP_CONV2D].max_in, 3);
    cr_expect_eq(dn_op_info[DN_OP_BATCHNORM_TRAIN].nout, 3);
    DnAttrSpec spec[DN_MAX_ATTRS];
    cr_expect_eq(dn_op_schema(DN_OP_CONV2D, spec), 5);
    cr_expect_str_eq(spec[4].name, "act");
    cr_expect_eq(spec[4].kind, DN_ATTR_STR);
    cr_expect_eq(dn_op_schema(DN_OP_RELU, spec), 0);
    for (int k = 0; k < DN_OP_COUNT; k++) cr_expect_leq(dn_op_info[k].nout, DN_MAX_OUTS);
}

Test(build, dtype_and_shape_helpers)
{
    cr_expect_eq(dn_dtype_size(F32), 4);
    cr_expect_eq(dn_dtype_size(DN_DTYPE_I64), 8);
    cr_expect_str_eq(dn_dtype_name(I32), "i32");
    DnShape s = SHAPE(N, 1, 28, 28), t = SHAPE(2, 3);
    cr_expect(dn_shape_has_n(&s));
    cr_expect_not(dn_shape_has_n(&t));
    cr_expect_eq(dn_shape_numel_static(&s), 784);
    cr_expect_eq(dn_shape_numel_static(&t), 6);
    char buf[64];
    cr_expect_str_eq(dn_type_str(F32, &s, buf, sizeof buf), "f32[N, 1, 28, 28]");
    DnShape z = {0};
    cr_expect_str_eq(dn_type_str(F32, &z, buf, sizeof buf), "f32[]");
    cr_expect(dn_shape_eq(&s, &s));
    cr_expect_not(dn_shape_eq(&s, &t));
}

Test(build, defaults_are_filled)
{
    DnValue *x = input("x", F32, SHAPE(N, 1, 28, 28)), *w = param("w", SHAPE(6, 1, 5, 5));
    DnValue *y = B0(CONV2D, x, w);
    cr_assert_not_null(y, "%s", first_error());
    int n;
    const int64_t *v = dn_op_ints(y->def, "stride", &n);
    cr_expect(n == 2 && v[0] == 1 && v[1] == 1);
    v = dn_op_ints(y->def, "pad", &n);
    cr_expect(n == 2 && v[0] == 0 && v[1] == 0);
    v = dn_op_ints(y->def, "dilation", &n);
    cr_expect(n == 2 && v[0] == 1 && v[1] == 1);
    cr_expect_eq(dn_op_int(y->def, "groups"), 1);
    cr_expect_str_eq(dn_op_str(y->def, "act"), "none");
    EXPECT_TYPE(y, "f32[N, 6, 24, 24]");

    DnValue *p = BA(MAXPOOL2D, (y), IS("kernel", 3, 2));
    v = dn_op_ints(p->def, "stride", &n);
    cr_expect(n == 2 && v[0] == 3 && v[1] == 2, "pool stride defaults to the kernel");
    EXPECT_TYPE(p, "f32[N, 6, 8, 12]");

    DnValue *pads = BA(AVGPOOL2D, (y), IS("kernel", 4), IS("pad", 2));
    v = dn_op_ints(pads->def, "pad", &n);
    cr_expect(n == 2 && v[0] == 2 && v[1] == 2, "one int expands to both axes");

    DnValue *sm = B0(SOFTMAX, y);
    cr_expect_eq(dn_op_int(sm->def, "axis"), 3);
    cr_expect_eq(dn_op_float(B0(DROPOUT, y)->def, "p"), 0.5);
    DnValue *gm = param("g", SHAPE(6));
    DnOp *bt = dn_build(&cx, g, DN_OP_BATCHNORM_TRAIN, 5, VALS(y, gm, gm, gm, gm), 0, NULL, loc);
    cr_expect_eq(dn_op_float(bt, "eps"), 1e-5);
    cr_expect_eq(dn_op_float(bt, "momentum"), 0.1);
    DnOp *sgd = BOP(SGD_UPDATE, (w, w, w), FL("lr", 0.1));
    cr_assert_not_null(sgd, "%s", first_error());
    cr_expect_eq(dn_op_float(sgd, "momentum"), 0);
    cr_expect_eq(dn_op_float(sgd, "dampening"), 0);
    cr_expect_eq(dn_op_int(sgd, "nesterov"), 0);
    cr_expect_str_eq(dn_op_str(sgd, "sched"), "const");
    DnOp *adam = BOP(ADAM_UPDATE, (w, w, w, w), I("lr", 1));
    cr_assert_not_null(adam, "%s", first_error());
    cr_expect_eq(dn_op_float(adam, "lr"), 1.0, "an int is accepted for a float");
    cr_expect_eq(dn_op_float(adam, "eps"), 1e-8);
    cr_expect_eq(dn_op_float(adam, "beta1"), 0.9);
    cr_expect_eq(dn_op_float(adam, "beta2"), 0.999);
    cr_expect_eq(dn_op_int(adam, "decoupled"), 0);
    cr_expect_eq(dn_op_float(adam, "gamma"), 1.0);
    cr_expect_eq(cx.nerr, 0, "%s", first_error());
}

/* ---- errors ------------------------------------------------------------------ */

Test(build, attribute_errors)
{
    DnValue *x = input("x", F32, SHAPE(N, 1, 28, 28)), *w = param("w", SHAPE(6, 1, 5, 5));
    int nops = g->ops.len;
    EXPECT_ERROR(BA(RESHAPE, (x), I("axis", 1)), "reshape: unknown attribute 'axis'");
    dn_ctx_free(&cx);
    EXPECT_ERROR(B0(RESHAPE, x), "reshape: missing attribute 'shape'");
    dn_ctx_free(&cx);
    EXPECT_ERROR(BA(CONV2D, (x, w), I("act", 1)), "conv2d: attribute 'act' must be a string, got an int");
    dn_ctx_free(&cx);
    EXPECT_ERROR(BA(CONV2D, (x, w), IS("pad", 1, 2, 3)), "conv2d: attribute 'pad' needs 1 or 2 values, got 3");
    dn_ctx_free(&cx);
    EXPECT_ERROR(BA(CONV2D, (x, w), I("groups", 1), I("groups", 2)), "conv2d: attribute 'groups' given twice");
    dn_ctx_free(&cx);
    EXPECT_ERROR(BA(CONV2D, (x, w), S("act", "swish")), "conv2d: unknown activation 'swish'");
    dn_ctx_free(&cx);
    EXPECT_ERROR(B0(SCALE, x), "scale: missing attribute 'alpha'");
    dn_ctx_free(&cx);
    EXPECT_ERROR(B0(MAXPOOL2D, x), "maxpool2d: missing attribute 'kernel'");
    dn_ctx_free(&cx);
    EXPECT_ERROR(B0(SGD_UPDATE, w, w, w), "sgd_update: missing attribute 'lr'");
    dn_ctx_free(&cx);
    EXPECT_ERROR(BA(SGD_UPDATE, (w, w, w), FL("lr", 0.1), S("sched", "linear")),
                 "sgd_update: unknown schedule 'linear' (const, step or cosine)");
    cr_expect_eq(g->ops.len, nops, "failed builds append nothing");
}

Test(build, arity_and_poison)
{
    DnValue *x = input("x", F32, SHAPE(N, 4));
    EXPECT_ERROR(B0(RELU, x, x), "relu expects 1 operand, got 2");
    dn_ctx_free(&cx);
    EXPECT_ERROR(B0(CONV2D, x), "conv2d expects 2 to 3 operands, got 1");
    dn_ctx_free(&cx);
    cr_expect_null(B0(ADD, x, NULL));
    cr_expect_eq(cx.nerr, 0, "a poisoned operand is silent");
    cr_expect_eq(g->ops.len, 0);
}

Test(build, shape_errors)
{
    DnValue *flat = input("flat", F32, SHAPE(N, 784)), *img = input("img", F32, SHAPE(N, 3, 32, 32));
    DnValue *w = param("w", SHAPE(6, 1, 5, 5)), *w2 = param("w2", SHAPE(8, 2, 3, 3));
    DnValue *fw = param("fw", SHAPE(120, 256)), *lab = input("lab", I32, SHAPE(N)),
            *lab5 = input("lab5", I32, SHAPE(5));
    struct {
        DnValue *got;
        const char *msg;
    } cases[] = {
        {B0(CONV2D, flat, w), "conv2d expects a 4-d input, got f32[N, 784]"},
        {B0(CONV2D, img, w), "conv2d: weight f32[6, 1, 5, 5] expects 1 input channels per group, input "
                             "f32[N, 3, 32, 32] has 3 (groups = 1)"},
        {BA(CONV2D, (img, w2), I("groups", 2)),
         "conv2d: groups = 2 must divide the input channels (3) and output channels (8)"},
        {B0(CONV2D, img, w, fw), "conv2d expects a 1-d bias, got f32[120, 256]"},
        {BA(MAXPOOL2D, (img), IS("kernel", 40)), "maxpool2d: kernel [40, 40] is larger than the padded input "
                                                 "f32[N, 3, 32, 32]"},
        {B0(DENSE, flat, fw), "dense: weight f32[120, 256] expects 256 input features, got f32[N, 784]"},
        {B0(MATMUL, flat, fw), "matmul: inner dimensions of f32[N, 784] and f32[120, 256] differ: 784 vs 120"},
        {BA(RESHAPE, (img), IS("shape", -1, 3000)),
         "reshape: cannot reshape f32[N, 3, 32, 32] to [-1, 3000]: 3072 vs 3000 elements per sample"},
        {BA(RESHAPE, (img), IS("shape", 3072)),
         "reshape: cannot reshape f32[N, 3, 32, 32] to [3072]: -1 (N) in axis 0 must match the input's batch "
         "dimension"},
        {BA(RESHAPE, (img), IS("shape", -1, -1)),
         "reshape: shape [-1, -1] may hold -1 (N) only in axis 0, T only in axis 1 after N, and sizes >= 1 "
         "elsewhere"},
        {BA(TRANSPOSE, (img), IS("perm", 0, 1, 1, 2)),
         "transpose: perm [0, 1, 1, 2] is not a permutation of the axes of f32[N, 3, 32, 32]"},
        {BA(TRANSPOSE, (img), IS("perm", 1, 0, 2, 3)),
         "transpose: perm [1, 0, 2, 3] must keep the batch axis of f32[N, 3, 32, 32] first"},
        {BA(SOFTMAX, (flat), I("axis", 2)), "softmax: axis 2 is out of range for f32[N, 784]"},
        {BA(DROPOUT, (flat), FL("p", 1.0)), "dropout: p must be in [0, 1), got 1"},
        {B0(CROSS_ENTROPY, flat, lab5),
         "cross_entropy: labels i32[5] do not match logits f32[N, 784] (expected i32[N])"},
        {B0(CROSS_ENTROPY, flat, flat), "cross_entropy: labels f32[N, 784] do not match logits f32[N, 784] (expected "
                                        "i32[N])"},
        {B0(MSE, flat, lab), "mse: operand types f32[N, 784] and i32[N] differ"},
        {BA(SUM_TO, (img), IS("shape", 4, 1, 1)), "sum_to: shape [4, 1, 1] does not broadcast to f32[N, 3, 32, 32]"},
        {B0(RELU, lab), "relu expects an f32 input, got i32[N]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_expect_null(cases[i].got, "case %zu built", i);
        const DnDiag *d = cx.diags;
        for (size_t j = 0; d && j < i; j++) d = d->next;
        cr_expect_str_eq(d ? d->msg : "(none)", cases[i].msg, "case %zu", i);
        if (d) cr_expect(d->loc.line == 3 && d->loc.col == 7 && !strcmp(d->loc.file, "t.dnn"));
    }
    cr_expect_eq(cx.nerr, (int)(sizeof cases / sizeof cases[0]));
}

/* interpolate's rules, and maxpool2d's ceil_mode. */
Test(build, resize_errors)
{
    DnValue *flat = input("flat", F32, SHAPE(N, 784)), *img = input("img", F32, SHAPE(N, 3, 32, 32));
    struct {
        DnValue *got;
        const char *msg;
    } cases[] = {
        {BA(MAXPOOL2D, (img), IS("kernel", 2), I("ceil_mode", 2)), "maxpool2d: ceil_mode must be 0 or 1, got 2"},
        {BA(INTERPOLATE, (img), IS("size", 8, 8), S("mode", "bicubic")),
         "interpolate: mode must be \"bilinear\" or \"nearest\", got 'bicubic'"},
        {BA(INTERPOLATE, (img), IS("size", 0, 8)),
         "interpolate: size [0, 8] must be two sizes [OH, OW], each between 1 and 1048576"},
        {BA(INTERPOLATE, (flat), IS("size", 8, 8)), "interpolate expects a 4-d input, got f32[N, 784]"},
        {BA(INTERPOLATE_BWD, (img), IS("shape", -1, 4, 8, 8)),
         "interpolate_bwd: shape f32[N, 4, 8, 8] does not match the gradient f32[N, 3, 32, 32]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_expect_null(cases[i].got, "case %zu built", i);
        const DnDiag *d = cx.diags;
        for (size_t j = 0; d && j < i; j++) d = d->next;
        cr_expect_str_eq(d ? d->msg : "(none)", cases[i].msg, "case %zu", i);
    }
    cr_expect_eq(cx.nerr, (int)(sizeof cases / sizeof cases[0]));
}

/* The shape family's rules: the batch axis, mismatched operands, bounds. */
Test(build, shape_family_errors)
{
    DnValue *flat = input("flat", F32, SHAPE(N, 784)), *img = input("img", F32, SHAPE(N, 3, 32, 32));
    DnValue *lab = input("lab", I32, SHAPE(N));
    struct {
        DnValue *got;
        const char *msg;
    } cases[] = {
        {BA(CONCAT, (img, img), I("axis", 0)), "concat: cannot concatenate along the batch axis N of f32[N, 3, 32, "
                                               "32] (its size is known only at run time)"},
        {BA(CONCAT, (flat, lab), I("axis", 1)),
         "concat: operand 1 i32[N] does not match operand 0 f32[N, 784] (same dtype and rank needed)"},
        {BA(CONCAT, (img, flat), I("axis", 1)),
         "concat: operand 1 f32[N, 784] does not match operand 0 f32[N, 3, 32, 32] (same dtype and rank needed)"},
        {BA(SLICE, (img), I("axis", 0), I("start", 0), I("stop", 1)),
         "slice: cannot slice the batch axis N of f32[N, 3, 32, 32] (its size is known only at run time)"},
        {BA(SLICE, (img), I("axis", 1), I("start", 2), I("stop", 4)),
         "slice: start 2, stop 4, step 1 on axis 1 of size 3: need 0 <= start < stop <= size and step >= 1"},
        {BA(SLICE, (img), I("axis", 1), I("start", 0), I("stop", 3), I("step", 0)),
         "slice: start 0, stop 3, step 0 on axis 1 of size 3: need 0 <= start < stop <= size and step >= 1"},
        {BA(SLICE_BWD, (img), I("axis", 1), I("start", 0), I("stop", 2), IS("shape", -1, 3, 32, 32)),
         "slice_bwd: gradient f32[N, 3, 32, 32] does not match the forward result f32[N, 2, 32, 32]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_expect_null(cases[i].got, "case %zu built", i);
        const DnDiag *d = cx.diags;
        for (size_t j = 0; d && j < i; j++) d = d->next;
        cr_expect_str_eq(d ? d->msg : "(none)", cases[i].msg, "case %zu: %s", i, d ? d->msg : "(none)");
    }
    cr_expect_eq(cx.nerr, (int)(sizeof cases / sizeof cases[0]));
}

/* The embedding family's shape errors, and cross_entropy's over sequences
 * (in a test of their own: the context keeps 20 errors). */
Test(build, embed_shape_errors)
{
    DnValue *flat = input("flat", F32, SHAPE(N, 784)), *lab = input("lab", I32, SHAPE(N));
    DnValue *fw = param("fw", SHAPE(120, 256)), *img = input("img", F32, SHAPE(N, 3, 32));
    struct {
        DnValue *got;
        const char *msg;
    } cases[] = {
        {BA(EMBEDDING, (flat, fw)), "embedding expects i32 indices, got f32[N, 784]"},
        {BA(EMBEDDING, (lab, fw), I("padding_idx", 120)),
         "embedding: padding_idx 120 must be -1 (none) or a row in [0, 120)"},
        {BA(EMBEDDING_BWD, (lab, fw), I("num", 5)),
         "embedding_bwd: gradient f32[120, 256] does not match the forward result f32[N, 256]"},
        {B0(CROSS_ENTROPY, img, lab),
         "cross_entropy: labels i32[N] do not match logits f32[N, 3, 32] (expected i32[N, 3])"},
        {BA(SEQUENCE_MASK, (lab), I("max_len", 0)), "sequence_mask: max_len 0 must be >= 1"},
        {BA(SEQUENCE_MASK, (flat), I("max_len", 3)), "sequence_mask expects i32 lengths, got f32[N, 784]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_expect_null(cases[i].got, "case %zu built", i);
        const DnDiag *d = cx.diags;
        for (size_t j = 0; d && j < i; j++) d = d->next;
        cr_expect_str_eq(d ? d->msg : "(none)", cases[i].msg, "case %zu", i);
    }
}

/* check_finite: one code (>= 1) per checked f32 operand, then at most one
 * earlier flag (i32[]). */
Test(build, check_finite_errors)
{
    DnValue *x = input("x", F32, SHAPE(N, 784)), *lab = input("lab", I32, SHAPE(N));
    DnValue *flag = BA(CHECK_FINITE, (x), IS("codes", 1));
    EXPECT_TYPE(flag, "i32[]");
    EXPECT_TYPE(BA(CHECK_FINITE, (x, x, flag), IS("codes", 2, 3)), "i32[]");
    struct {
        DnValue *got;
        const char *msg;
    } cases[] = {
        {BA(CHECK_FINITE, (x, lab), IS("codes", 1, 2)), "check_finite expects f32 operands to check, got i32[N]"},
        {BA(CHECK_FINITE, (x), IS("codes", 1, 2)),
         "check_finite: 2 codes for 1 operands (one per checked operand, then an optional earlier flag)"},
        {BA(CHECK_FINITE, (x, x, x), IS("codes", 1)),
         "check_finite: 1 codes for 3 operands (one per checked operand, then an optional earlier flag)"},
        {BA(CHECK_FINITE, (x), IS("codes", 0)), "check_finite: code 0 is outside [1, 1073741824]"},
        {BA(CHECK_FINITE, (x, x), IS("codes", 1)),
         "check_finite: the operand after the checked ones must be an earlier flag, i32[], got f32[N, 784]"},
    };
    const DnDiag *d = cx.diags;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++, d = d ? d->next : NULL) {
        cr_expect_null(cases[i].got, "case %zu built", i);
        cr_expect_str_eq(d ? d->msg : "(none)", cases[i].msg, "case %zu", i);
    }
}

/* ---- broadcasting ------------------------------------------------------------ */

Test(build, broadcasting)
{
    DnValue *a = input("a", F32, SHAPE(N, 64)), *b = input("b", F32, SHAPE(N, 32));
    DnValue *one = input("one", F32, SHAPE(1, 64)), *row = input("row", F32, SHAPE(64));
    DnValue *three = input("three", F32, SHAPE(3, 64)), *cube = input("cube", F32, SHAPE(2, 1, 64));
    DnValue *col = input("col", F32, SHAPE(N, 1)), *s = input("s", F32, (DnShape){0});
    DnValue *m = input("m", F32, SHAPE(4, 1)), *n = input("n", F32, SHAPE(1, 5));
    DnValue *ia = input("ia", I32, SHAPE(N, 64));
    EXPECT_TYPE(B0(ADD, a, a), "f32[N, 64]");
    EXPECT_TYPE(B0(SUB, a, one), "f32[N, 64]");
    EXPECT_TYPE(B0(MUL, row, a), "f32[N, 64]");
    EXPECT_TYPE(B0(DIV, a, col), "f32[N, 64]");
    EXPECT_TYPE(B0(ADD, a, s), "f32[N, 64]");
    EXPECT_TYPE(B0(ADD, m, n), "f32[4, 5]");
    EXPECT_TYPE(B0(ADD, three, cube), "f32[2, 3, 64]");
    cr_expect_eq(cx.nerr, 0, "%s", first_error());
    EXPECT_ERROR(B0(ADD, a, b), "add: shapes f32[N, 64] and f32[N, 32] do not broadcast");
    dn_ctx_free(&cx);
    EXPECT_ERROR(B0(MUL, a, three), "mul: shapes f32[N, 64] and f32[3, 64] do not broadcast");
    dn_ctx_free(&cx);
    EXPECT_ERROR(B0(SUB, a, cube), "sub: shapes f32[N, 64] and f32[2, 1, 64] do not broadcast");
    dn_ctx_free(&cx);
    EXPECT_ERROR(B0(DIV, a, ia), "div: operand types f32[N, 64] and i32[N, 64] differ");
    DnShape out;
    DnShape sa = SHAPE(N, 1, 5), sb = SHAPE(7, 1);
    cr_expect(dn_shape_broadcast(&sa, &sb, &out));
    char buf[64];
    cr_expect_str_eq(dn_type_str(F32, &out, buf, sizeof buf), "f32[N, 7, 5]");
}

Test(build, matmul_forms)
{
    DnValue *q = input("q", F32, SHAPE(N, 2, 6, 8)), *k = input("k", F32, SHAPE(N, 2, 6, 8));
    DnValue *x = input("x", F32, SHAPE(N, 6, 8)), *w = param("w", SHAPE(8, 3));
    DnValue *dy = input("dy", F32, SHAPE(N, 3)), *v = input("v", F32, SHAPE(N, 8));
    EXPECT_TYPE(BA(MATMUL, (q, k), I("trans_b", 1)), "f32[N, 2, 6, 6]");
    EXPECT_TYPE(B0(MATMUL, x, w), "f32[N, 6, 3]");
    EXPECT_TYPE(BA(MATMUL, (dy, v), I("trans_a", 1)), "f32[3, 8]");
    DnValue *w38 = param("w38", SHAPE(3, 8));
    EXPECT_TYPE(BA(MATMUL, (w38, v), I("trans_b", 1)), "NULL");
    cr_expect_str_eq(first_error(), "matmul: the result of f32[3, 8] and f32[N, 8] would have N in axis 1");
    dn_ctx_free(&cx);
    DnValue *xt = input("xt", F32, SHAPE(N, 8, 6));
    EXPECT_ERROR(B0(MATMUL, q, xt), "matmul: batch dimensions of f32[N, 2, 6, 8] and f32[N, 8, 6] differ");
}

/* ---- graph helpers ------------------------------------------------------------ */

Test(build, params_uses_and_replace)
{
    DnValue *x = input("x", F32, SHAPE(N, 4));
    DnParam *p = dn_graph_add_param(g, "layer.0.w", DN_PARAM_BUFFER, F32, &(DnShape){1, {4}},
                                    (DnInit){.kind = DN_INIT_ONES, .a = 0, .b = 0}, loc);
    cr_expect_eq(p->value->kind, DN_VAL_PARAM);
    cr_expect_eq(p->value->index, 0);
    cr_expect_not(p->trainable, "buffers are not trainable");
    cr_expect_eq(dn_graph_find_param(g, "layer.0.w"), p);
    cr_expect_null(dn_graph_find_param(g, "nope"));
    DnValue *a = B0(ADD, x, p->value), *r = B0(RELU, a), *t = B0(TANH, a);
    dn_graph_add_output(g, "y", r);
    DnArena scratch = {0};
    int *uses = dn_fill_uses(g, &scratch);
    cr_expect_eq(uses[x->id], 1);
    cr_expect_eq(uses[a->id], 2);
    cr_expect_eq(uses[r->id], 1, "outputs count as uses");
    cr_expect_eq(uses[t->id], 0);
    dn_graph_replace_uses(g, a, x);
    cr_expect_eq(r->def->in[0], x);
    cr_expect_eq(t->def->in[0], x);
    dn_graph_replace_uses(g, r, t);
    cr_expect_eq(g->outputs.data[0], t);
    uses = dn_fill_uses(g, &scratch);
    cr_expect_eq(uses[a->id], 0);
    dn_arena_free(&scratch);
}

Test(build, clone_is_deep_and_drops_dead_ops)
{
    bool seen[DN_OP_COUNT] = {0};
    build_all(seen);
    DnValue *x = g->inputs.data[0];
    DnValue *dead = B0(RELU, x);
    dead->def->dead = true;
    DnGraph *c = dn_graph_clone(g);
    cr_expect_eq(c->ops.len, g->ops.len - 1);
    char *a = print_str(g), *b = print_str(c);
    cr_expect_str_eq(a, b);
    cr_expect_eq(dn_verify(&cx, c), DN_OK, "%s", first_error());
    cr_expect_neq(c->params.data[0], g->params.data[0]);
    cr_expect_neq(c->loss, g->loss);
    cr_expect_neq(c->optim->attrs, g->optim->attrs);
    dn_graph_free(g); /* the clone must not depend on the original's arena */
    g = dn_graph_new("t");
    char *b2 = print_str(c);
    cr_expect_str_eq(a, b2);
    free(a);
    free(b);
    free(b2);
    dn_graph_free(c);
}

/* ---- verifier ----------------------------------------------------------------- */

TestSuite(verify, .init = setup, .fini = teardown);

Test(verify, accepts_a_built_graph)
{
    DnValue *x = input("x", F32, SHAPE(N, 4));
    dn_graph_add_output(g, "y", B0(RELU, B0(TANH, x)));
    cr_expect_eq(dn_verify(&cx, g), DN_OK, "%s", first_error());
}

Test(verify, catches_a_corrupted_shape)
{
    DnValue *x = input("x", F32, SHAPE(N, 4));
    DnValue *y = B0(RELU, x);
    dn_graph_add_output(g, "y", y);
    y->shape.dim[1] = 5;
    cr_expect_eq(dn_verify(&cx, g), DN_ERR);
    cr_expect_str_eq(first_error(),
                     "verify: result 0 of relu is recorded as f32[N, 5] but its shape rule gives f32[N, 4]");
    cr_expect_eq(cx.diags->loc.line, 3);
}

Test(verify, catches_use_before_def)
{
    DnValue *x = input("x", F32, SHAPE(N, 4));
    DnValue *a = B0(RELU, x), *b = B0(TANH, a);
    dn_graph_add_output(g, "y", b);
    g->ops.data[0] = b->def; /* tanh now runs before relu */
    g->ops.data[1] = a->def;
    cr_expect_eq(dn_verify(&cx, g), DN_ERR);
    cr_expect_str_eq(first_error(),
                     "verify: operand 0 of tanh (value id 1) is used before it is defined, or is not in this graph");
}

Test(verify, catches_foreign_values_and_bad_attrs)
{
    DnGraph *other = dn_graph_new("o");
    DnValue *fx = dn_graph_add_input(other, "x", F32, &(DnShape){2, {N, 4}}, loc);
    DnValue *x = input("x", F32, SHAPE(N, 4));
    DnValue *y = B0(ADD, x, x);
    y->def->in[1] = fx; /* same id, other graph */
    cr_expect_eq(dn_verify(&cx, g), DN_ERR);
    dn_ctx_free(&cx);
    y->def->in[1] = x;
    DnValue *s = B0(SOFTMAX, x);
    cr_expect_eq(dn_verify(&cx, g), DN_OK, "%s", first_error());
    s->def->nattrs = 0;
    cr_expect_eq(dn_verify(&cx, g), DN_ERR);
    cr_expect_str_eq(first_error(), "verify: softmax has 0 attributes, its schema 1");
    dn_ctx_free(&cx);
    s->def->nattrs = 1;
    dn_graph_add_output(g, "bad", fx);
    cr_expect_eq(dn_verify(&cx, g), DN_ERR);
    cr_expect_str_eq(first_error(), "verify: output 'bad' is not a defined value of this graph");
    dn_graph_free(other);
}

/* ---- text form ------------------------------------------------------------------ */

TestSuite(text, .init = setup, .fini = teardown);

/* A LeNet-like graph: conv2d, maxpool2d, relu, reshape, dense, softmax, add, loss, optimizer. */
static void build_lenet(void)
{
    DnValue *x = input("image", F32, SHAPE(N, 1, 28, 28));
    DnValue *lab = dn_graph_add_input(g, "label", I32, &(DnShape){1, {N}}, (DnLoc){0});
    lab->train_only = true;
    DnValue *w1 = param("conv1.weight", SHAPE(6, 1, 5, 5)), *b1 = param("conv1.bias", SHAPE(6));
    DnValue *w2 = param("fc1.weight", SHAPE(10, 1176)), *b2 = param("fc1.bias", SHAPE(10));
    dn_graph_find_param(g, "fc1.bias")->init = (DnInit){.kind = DN_INIT_NORMAL, .a = 0.0, .b = 1.0 / 3.0};
    dn_graph_find_param(g, "conv1.bias")->trainable = false;
    DnValue *y = BA(CONV2D, (x, w1, b1), IS("pad", 2));
    y = B0(RELU, y);
    y = BA(MAXPOOL2D, (y), IS("kernel", 2));
    y = BA(RESHAPE, (y), IS("shape", -1, 1176));
    y = B0(DENSE, y, w2);
    DnValue *logits = B0(ADD, y, b2);
    dn_graph_add_output(g, "logits", logits);
    dn_graph_add_output(g, "probs", B0(SOFTMAX, logits));
    g->loss = BA(CROSS_ENTROPY, (logits, lab), FL("smoothing", 0.1f));
    g->optim = dn_arena_alloc(&g->arena, sizeof *g->optim);
    g->optim->kind = DN_OP_ADAM_UPDATE;
    g->optim->attrs = dn_attrs_complete(&cx, g, DN_OP_ADAM_UPDATE, NULL, 2, ATTRS(FL("lr", 2e-3), S("sched", "cosine")),
                                        loc, &g->optim->nattrs);
    cr_assert_eq(cx.nerr, 0, "%s", first_error());
}

static void expect_round_trip(void)
{
    char *a = print_str(g);
    DnGraph *h = dn_graph_read(&cx, "rt.dnir", a);
    cr_assert_not_null(h, "%s\n%s", first_error(), a);
    char *b = print_str(h);
    cr_expect_str_eq(b, a);
    cr_expect_eq(dn_verify(&cx, h), DN_OK, "%s", first_error());
    free(a);
    free(b);
    dn_graph_free(h);
}

Test(text, lenet_round_trips)
{
    build_lenet();
    expect_round_trip();
    char *a = print_str(g);
    cr_expect(strstr(a, "func @t(%image: f32[N, 1, 28, 28]  loc(\"t.dnn\":3:7), %label: i32[N] train_only) -> "
                        "(logits = %5, probs = %6) {\n"),
              "%s", a);
    cr_expect(strstr(a, "  param @conv1.bias: f32[6] weight frozen uniform(-0.1, 0.1)  loc(\"t.dnn\":3:7)\n"), "%s", a);
    cr_expect(strstr(a, "  %0 = conv2d %image, @conv1.weight, @conv1.bias {stride = [1, 1], pad = [2, 2], dilation = "
                        "[1, 1], groups = 1, act = \"none\"} : f32[N, 6, 28, 28]  loc(\"t.dnn\":3:7)\n"),
              "%s", a);
    cr_expect(strstr(a, "  loss %7\n"), "%s", a);
    cr_expect(strstr(a, "  optimizer adam_update {lr = 0.002, beta1 = 0.9,"), "%s", a);
    free(a);
}

Test(text, every_op_kind_round_trips)
{
    bool seen[DN_OP_COUNT] = {0};
    build_all(seen);
    expect_round_trip();
}

Test(text, floats_are_bit_exact)
{
    DnValue *x = input("x", F32, SHAPE(N, 4));
    double vals[] = {0.1f, 1.0 / 3.0, 1e-30, -2.5e300, 0, 123456789.125, INFINITY};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) BA(SCALE, (x), FL("alpha", vals[i]));
    char *a = print_str(g);
    DnGraph *h = dn_graph_read(&cx, "f.dnir", a);
    cr_assert_not_null(h, "%s", first_error());
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        cr_expect_eq(dn_op_float(h->ops.data[i], "alpha"), vals[i], "value %zu", i);
    free(a);
    dn_graph_free(h);
}

Test(text, quoted_names_round_trip)
{
    DnValue *x = input("x", F32, SHAPE(4));
    DnValue *w = param("odd name\"q\"", SHAPE(4));
    dn_graph_add_output(g, "out put", B0(ADD, x, w));
    expect_round_trip();
}

Test(text, sequence_axis_round_trips)
{
    DnValue *x = input("x", F32, SHAPE(N, DN_DIM_SEQ(8), 4));
    dn_graph_add_output(g, "y", B0(RELU, x));
    char *a = print_str(g);
    cr_expect(strstr(a, "%x: f32[N, T<=8, 4]"), "%s", a);
    free(a);
    expect_round_trip();
}

Test(text, zeroed_init_row_round_trips)
{
    DnValue *x = input("x", F32, SHAPE(4));
    DnShape s = SHAPE(4);
    DnValue *w = dn_graph_add_param(g, "e.weight", DN_PARAM_WEIGHT, F32, &s,
                                    (DnInit){.kind = DN_INIT_NORMAL, .a = 0, .b = 1, .zero_row = 3}, loc)
                     ->value;
    dn_graph_add_output(g, "y", B0(ADD, x, w));
    char *a = print_str(g);
    cr_expect(strstr(a, "normal(0.0, 1.0) zero_row 2"), "%s", a);
    free(a);
    expect_round_trip();
}

Test(text, reads_hand_written_text)
{
    const char *src = "// a comment\n"
                      "func @m(%x: f32[N, 4]) -> (y = %b) {\n"
                      "  param @w: f32[4] weight zeros   # trailing comment\n"
                      "  %a = add %x, @w\n"
                      "  %b = softmax %a {axis = -1}\n"
                      "}\n";
    DnGraph *h = dn_graph_read(&cx, "h.dnir", src);
    cr_assert_not_null(h, "%s", first_error());
    cr_expect_eq(h->ops.len, 2);
    cr_expect_eq(dn_op_int(h->ops.data[1], "axis"), 1);
    cr_expect_null(h->ops.data[0]->loc.file, "no loc() means no location");
    cr_expect_str_eq(h->output_names.data[0], "y");
    dn_graph_free(h);
}

static const struct {
    const char *text, *msg;
    int line, col;
} bad_inputs[] = {
    {"", "expected 'func', got end of input", 1, 1},
    {"func @f(%x: f32[N, 4]) -> (y = %x) {\n", "expected '}' at the end of the function", 2, 1},
    {"func @f(%x: f32[N, 4]) -> (y = %1) {\n  %0 = relu %x\n}\n", "use of undefined value %1", 1, 32},
    {"func @f(%x: f32[N, 4]) -> () {\n  %0 = frob %x\n}\n", "unknown op 'frob'", 2, 8},
    {"func @f(%x: f32[N, 4]) -> () {\n  %0 = relu %y\n}\n", "use of undefined value %y", 2, 13},
    {"func @f(%x: f32[N, 4]) -> () {\n  %0 = relu %x : f32[N, 5]\n}\n",
     "%0: declared type f32[N, 5] differs from the inferred f32[N, 4]", 2, 3},
    {"func @f(%x: f32[N, 4], %z: f32[N, 3]) -> () {\n  %0 = add %x, %z\n}\n",
     "add: shapes f32[N, 4] and f32[N, 3] do not broadcast", 2, 8},
    {"func @f(%x: f32[N, 4]) -> () {\n  %0 = relu %x\n  %0 = tanh %x\n}\n", "%0 is defined twice", 3, 3},
    {"func @f(%x: f32[4, N]) -> () {}\n", "N may only be the first dimension", 1, 20},
    {"func @f(%x: f32[0]) -> () {}\n", "dimension must be >= 1, got 0", 1, 17},
    {"func @f(%x: f32[4, T<=3]) -> () {}\n", "T may only be the second dimension, after N", 1, 20},
    {"func @f(%x: f32[N, T<=0]) -> () {}\n", "the bound of T must be in 1..16777216, got 0", 1, 23},
    {"func @f(%x: f32[N, T]) -> () {}\n", "expected '<', got ']'", 1, 21},
    {"func @f(%x: f16[4]) -> () {}\n", "unknown dtype 'f16'", 1, 13},
    {"func @f(%x: f32[4]) -> () {\n  %0 = scale %x {alpha = \"oops}\n}\n", "unterminated string", 2, 26},
    {"func @f(%x: f32[4]) -> () {\n  %0 = scale %x {alpha = 99999999999999999999}\n}\n", "number out of range", 2, 26},
    {"func @f(%x: f32[4]) -> () {\n  %0 = scale %x {alpha = 1.5.5}\n}\n", "malformed number", 2, 26},
    {"func @f(%x: f32[4]) -> () {\n  %0 = relu %x \x01\n}\n", "unexpected character \\x01", 2, 16},
    {"func @f(%x: f32[4]) -> () {\n  %0 = relu %x {p = 1}\n}\n", "relu: unknown attribute 'p'", 2, 8},
    {"func @f(%x: f32[4]) -> () {\n  param @w: f32[N, 4] weight zeros\n}\n", "parameter shapes cannot hold N", 2, 13},
    {"func @f(%x: f32[4]) -> () {\n  param @w: f32[4] buffer frozen zeros\n}\n", "'frozen' does not apply to a buffer",
     2, 27},
    {"func @f(%x: f32[4]) -> () {\n  optimizer relu\n}\n", "optimizer must be sgd_update or adam_update, got 'relu'", 2,
     13},
    {"func @f(%x: f32[4]) -> () {\n  loss %x\n}\n", "the loss must be an f32[] value", 2, 8},
    {"func @f(%x: f32[4]) -> () {\n  %0, %1 = relu %x\n}\n", "relu has 1 result, 2 named", 2, 3},
    {"func @f(%x: f32[4]) -> () {\n  %0 = relu %x loc(\"a\":1)\n}\n", "expected ':', got ')'", 2, 25},
    {"func @f(%x: f32[4]) -> () {\n}\n}", "unexpected punctuation after the function", 3, 1},
    {"func @f(%x: f32[N, 1, 8, 8]) -> () {\n  param @w: f32[1, 1, 3, 3] weight zeros\n"
     "  %0 = conv2d %x, @w {pad = [9223372036854775807, 0]}\n}\n",
     "conv2d: pad [9223372036854775807, 0] is out of range (at most 1048576)", 3, 8},
    {"func @f(%x: f32[N, 4294967296, 4294967296]) -> () {\n  %0 = relu %x\n}\n",
     "relu: operand f32[N, 4294967296, 4294967296] is larger than the 1099511627776 bytes a tensor may hold", 2, 8},
    {"func @f(%x: f32[4]) -> () {\n  %0 = relu %x loc(\"a\":0:0)\n}\n",
     "location out of range (line and column start at 1)", 2, 24},
};

Test(text, reader_errors)
{
    for (size_t i = 0; i < sizeof bad_inputs / sizeof bad_inputs[0]; i++) {
        DnCtx c;
        dn_ctx_init(&c);
        DnGraph *h = dn_graph_read(&c, "bad.dnir", bad_inputs[i].text);
        cr_expect_null(h, "case %zu parsed", i);
        cr_expect_eq(c.nerr, 1, "case %zu", i);
        if (c.diags) {
            cr_expect_str_eq(c.diags->msg, bad_inputs[i].msg, "case %zu", i);
            cr_expect_str_eq(c.diags->loc.file, "bad.dnir", "case %zu", i);
            cr_expect(c.diags->loc.line == bad_inputs[i].line && c.diags->loc.col == bad_inputs[i].col,
                      "case %zu: at %d:%d, expected %d:%d", i, c.diags->loc.line, c.diags->loc.col, bad_inputs[i].line,
                      bad_inputs[i].col);
        }
        dn_graph_free(h);
        dn_ctx_free(&c);
    }
}

/* Every prefix and many one-byte corruptions of a valid text: the reader
 * must return a graph or NULL with a diagnostic, and never crash. */
Test(text, damaged_text_never_crashes)
{
    bool seen[DN_OP_COUNT] = {0};
    build_all(seen);
    char *a = print_str(g);
    size_t len = strlen(a);
    char *buf = malloc(len + 1);
    static const char junk[] = {'"', '%', '@', '{', '}', '[', ']', ',', '=', '-', '9', 'N', '\n', '\\', '#', 0x7f};
    unsigned seed = 12345;
    for (size_t cut = 0; cut <= len + 1200; cut++) {
        memcpy(buf, a, len + 1);
        if (cut < len)
            buf[cut] = 0; /* a prefix */
        else {            /* a corrupted byte */
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % len] = junk[(seed >> 20) % sizeof junk];
        }
        DnCtx c;
        dn_ctx_init(&c);
        DnGraph *h = dn_graph_read(&c, "fuzz.dnir", buf);
        cr_expect(h || c.nerr > 0, "NULL without a diagnostic at %zu", cut);
        if (cut + 1 < len) cr_expect_null(h, "a strict prefix (%zu bytes) parsed", cut);
        dn_graph_free(h);
        dn_ctx_free(&c);
    }
    free(buf);
    free(a);
}
