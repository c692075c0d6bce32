/* test_frontend.c -- the frontend through its C interface: lexer tokens,
 * the parser on every construct, the AST dump, and lowering (parameter
 * names and shapes, blocks, repeat, if, freeze, the optimizer spec).
 * Diagnostics of malformed files are covered by tests/diag, the full IR of
 * sample models by tests/ir. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "frontend/ast.h"

static DnCtx cx;
static DnArena ar;
static DnGraph *optim_graph; /* the graph of optim_of's last spec */

static void setup(void)
{
    dn_ctx_init(&cx);
    memset(&ar, 0, sizeof ar);
}

static void teardown(void)
{
    if (optim_graph) dn_graph_free(optim_graph);
    optim_graph = NULL;
    dn_arena_free(&ar);
    dn_ctx_free(&cx);
}

TestSuite(frontend, .init = setup, .fini = teardown);

static DnAst *parse(const char *src) { return dn_parse(&cx, "t.dnn", src, &ar); }

/* Parses and lowers 'src'; the graph (or NULL) is the caller's. */
static DnGraph *lower(const char *src, const char *model)
{
    DnAst *ast = parse(src);
    cr_assert_not_null(ast, "parse failed: %s", cx.diags ? cx.diags->msg : "?");
    return dn_lower(&cx, ast, model);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static const DnParam *param(const DnGraph *g, const char *name)
{
    const DnParam *p = dn_graph_find_param(g, name);
    cr_assert_not_null(p, "no parameter %s", name);
    return p;
}

static void assert_shape(const DnShape *s, int rank, const int64_t *dims)
{
    cr_assert_eq(s->rank, rank);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(s->dim[i], dims[i], "dim %d: %lld != %lld", i, (long long)s->dim[i], (long long)dims[i]);
}

/* ---- lexer ------------------------------------------------------------------- */

Test(frontend, lexer_tokens)
{
    TokenVec t = {0};
    dn_lex(&cx, "t.dnn", "x = a |> f(1, 2.5e-1) # note\ny != \"s\\n\"", &ar, &t);
    TokKind want[] = {TOK_IDENT, TOK_ASSIGN, TOK_IDENT,   TOK_PIPE,  TOK_IDENT, TOK_LPAREN, TOK_INT,     TOK_COMMA,
                      TOK_FLOAT, TOK_RPAREN, TOK_NEWLINE, TOK_IDENT, TOK_NE,    TOK_STRING, TOK_NEWLINE, TOK_EOF};
    cr_assert_eq(t.len, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < t.len; i++) cr_assert_eq(t.data[i].kind, want[i], "token %d", i);
    cr_assert_eq(t.data[6].ival, 1);
    cr_assert_float_eq(t.data[8].fval, 0.25, 1e-12);
    cr_assert_str_eq(t.data[13].str, "s\n");
    cr_assert_eq(t.data[11].loc.line, 2);
    cr_assert_eq(t.data[11].loc.col, 1);
    cr_assert_eq(cx.nerr, 0);
}

Test(frontend, lexer_keywords_and_continuation)
{
    TokenVec t = {0};
    /* a line starting with |> continues the previous one; newlines inside ( ) vanish */
    dn_lex(&cx, "t.dnn", "model repeat as\n  |> f(a,\n b)\n\n\nnot", &ar, &t);
    TokKind want[] = {TOK_MODEL, TOK_REPEAT, TOK_AS,     TOK_PIPE,    TOK_IDENT, TOK_LPAREN,  TOK_IDENT,
                      TOK_COMMA, TOK_IDENT,  TOK_RPAREN, TOK_NEWLINE, TOK_NOT,   TOK_NEWLINE, TOK_EOF};
    cr_assert_eq(t.len, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < t.len; i++) cr_assert_eq(t.data[i].kind, want[i], "token %d", i);
}

Test(frontend, lexer_errors_do_not_stop)
{
    TokenVec t = {0};
    dn_lex(&cx, "t.dnn", "a \xc3\xa9 $ 123456789012345678901234 b", &ar, &t);
    cr_assert_eq(cx.nerr, 3);
    cr_assert_eq(t.data[t.len - 1].kind, TOK_EOF);
    cr_assert_eq(t.data[t.len - 3].kind, TOK_IDENT); /* b survives */
}

/* ---- parser ------------------------------------------------------------------ */

static const char *all_constructs =
    "# every construct of the language\n"
    "block b(x, c: int, s: str = \"a\", f: float = 1e-3, on: bool = true) {\n"
    "  param p: f32[1, 4] = normal(std=0.02)\n"
    "  if on and not (c < 2 or c >= 10) { x = x |> relu } else if s == \"b\" { x = x } else { x = -x }\n"
    "  y = on ? x : x * 2.0\n"
    "  z = x[:, 0] + x[1:2, :3, a:] + [1, 2][0]\n"
    "  return x @ x / 2 - 1\n"
    "}\n"
    "model m(image: f32[N, 1, 28, 28], ids: i32[N, 7]) -> (out: f32[N, 10], s: f32[]) {\n"
    "  x = image |> conv1: conv2d(6, kernel=5, pad=2) |> relu\n"
    "            |> downsample.0: conv2d(6, 1) |> maxpool(2)\n"
    "  x = stack: repeat 2 as i { b(x, 3, s = i == 0 ? \"a\" : \"b\") }\n"
    "  repeat 3 { x = x |> relu }\n"
    "  out = fc: dense(x, 10)\n"
    "}\n"
    "train m {\n"
    "  label: i32[N]\n"
    "  augment image: random_crop(28, pad=2) |> hflip\n"
    "  loss = cross_entropy(out, label, smoothing=0.1)\n"
    "  optimizer = sgd(lr=0.1, momentum=0.9, schedule=step(10, gamma=0.5), warmup=2)\n"
    "  freeze conv1, downsample.0\n"
    "}\n";

Test(frontend, parser_accepts_every_construct)
{
    DnAst *ast = parse(all_constructs);
    cr_assert_not_null(ast, "first error: %s at %d:%d", cx.diags ? cx.diags->msg : "",
                       cx.diags ? cx.diags->loc.line : 0, cx.diags ? cx.diags->loc.col : 0);
    cr_assert_eq(ast->decls.len, 3);
    const AstDecl *b = ast->decls.data[0], *m = ast->decls.data[1], *t = ast->decls.data[2];
    cr_assert_eq(b->kind, DECL_BLOCK);
    cr_assert_eq(b->params.len, 5);
    cr_assert_str_eq(b->params.data[1].hp, "int");
    cr_assert_not_null(b->params.data[2].def);
    cr_assert_eq(m->outputs.len, 2);
    cr_assert_eq(m->outputs.data[1].type.shape.rank, 0);
    cr_assert_eq(m->params.data[1].type.dtype, DN_DTYPE_I32);
    cr_assert_eq(t->kind, DECL_TRAIN);
    cr_assert_eq(t->body.len, 5);
    cr_assert_eq(t->body.data[4]->kind, STMT_FREEZE);
    cr_assert_str_eq(t->body.data[4]->names.data[1], "downsample.0");
    /* the pipe is desugared: relu(conv2d(image, 6, ...)) */
    const AstExpr *e = m->body.data[0]->e;
    cr_assert_eq(e->kind, EXPR_CALL);
    cr_assert_str_eq(e->s, "maxpool");
    cr_assert_str_eq(e->args.data[0].value->label, "downsample.0");
    cr_assert_str_eq(e->args.data[0].value->args.data[0].value->s, "relu");
    cr_assert_eq(m->body.data[1]->e->kind, EXPR_REPEAT);
    cr_assert_str_eq(m->body.data[1]->e->label, "stack");
    cr_assert_str_eq(m->body.data[1]->e->s, "i");
}

/* start:stop:step, each part optional; an index without a colon stays an expression. */
Test(frontend, parser_reads_slice_steps)
{
    DnAst *ast =
        parse("model m(x: f32[N, 8, 8, 8, 8]) -> (y: f32[N, 2, 3, 6, 8]) {\n  y = x[:, 1:5:2, ::3, 2::, -1]\n}\n");
    cr_assert_not_null(ast, "%s", cx.diags ? cx.diags->msg : "");
    const AstExpr *e = ast->decls.data[0]->body.data[0]->e;
    cr_assert_eq(e->kind, EXPR_INDEX);
    cr_assert_eq(e->args.len, 5);
    const AstExpr *full = e->args.data[0].value, *a = e->args.data[1].value, *b = e->args.data[2].value,
                  *c = e->args.data[3].value, *d = e->args.data[4].value;
    cr_assert(full->kind == EXPR_SLICE && !full->a && !full->b && !full->c);
    cr_assert(a->kind == EXPR_SLICE && a->a->i == 1 && a->b->i == 5 && a->c->i == 2);
    cr_assert(b->kind == EXPR_SLICE && !b->a && !b->b && b->c->i == 3);
    cr_assert(c->kind == EXPR_SLICE && c->a->i == 2 && !c->b && !c->c);
    cr_assert_eq(d->kind, EXPR_UNARY);
}

Test(frontend, parser_reports_several_errors)
{
    DnAst *ast = parse("model m(x: f32[N]) -> (y: f32[N]) {\n  a = (1 +\n)\n  b = * 2\n  c = f(1 2)\n  y = x\n}\n");
    cr_assert_null(ast);
    cr_assert_eq(cx.nerr, 3);
    cr_assert_eq(cx.diags->loc.line, 3);
    cr_assert_str_eq(cx.diags->next->msg, "expected an expression, got '*'");
    cr_assert_str_eq(cx.diags->next->next->msg, "expected ')' after arguments, got number '2'");
    cr_assert_eq(cx.diags->next->next->loc.col, 11);
}

Test(frontend, parser_survives_hostile_input)
{
    static char deep[20000];
    memset(deep, '(', sizeof deep - 1);
    cr_assert_null(parse(deep));
    cr_assert_null(parse("model"));
    cr_assert_null(parse("model m(x: f32[N, 99999999999999999999]) -> (y: f32[]) { y = x"));
    cr_assert_null(parse("train t { freeze"));
    cr_assert_null(parse("\xff\xfe\x00"));
    cr_assert_gt(cx.nerr, 4);
}

Test(frontend, ast_dump)
{
    DnAst *ast = parse("model m(x: f32[N, 4]) -> (y: f32[N, 2]) {\n  y = x |> fc: dense(2, bias=false)\n}\n");
    cr_assert_not_null(ast);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dn_ast_print(ast, f);
    fclose(f);
    cr_assert_str_eq(buf, "model m @1:7\n"
                          "  input x f32[N, 4] @1:9\n"
                          "  output y f32[N, 2] @1:27\n"
                          "  assign y @2:3\n"
                          "    call dense() label=fc @2:16\n"
                          "      name x @2:7\n"
                          "      int 2 @2:22\n"
                          "      bias =\n"
                          "        bool false @2:30\n");
    free(buf);
}

/* ---- lowering ------------------------------------------------------------------ */

Test(frontend, lower_lenet)
{
    DnGraph *g = lower(read_file(DNNC_SOURCE_DIR "/examples/lenet.dnn"), NULL);
    cr_assert_not_null(g, "lowering failed: %s", cx.diags ? cx.diags->msg : "");
    struct {
        const char *name;
        int rank;
        int64_t dims[4];
    } want[] = {
        {"conv1.weight", 4, {6, 1, 5, 5}},  {"conv1.bias", 1, {6}},
        {"conv2.weight", 4, {16, 6, 5, 5}}, {"conv2.bias", 1, {16}},
        {"fc1.weight", 2, {120, 400}},      {"fc1.bias", 1, {120}},
        {"fc2.weight", 2, {84, 120}},       {"fc2.bias", 1, {84}},
        {"fc3.weight", 2, {10, 84}},        {"fc3.bias", 1, {10}},
    };
    cr_assert_eq(g->params.len, 10);
    for (int i = 0; i < 10; i++) {
        cr_assert_str_eq(g->params.data[i]->name, want[i].name);
        assert_shape(&g->params.data[i]->shape, want[i].rank, want[i].dims);
        cr_assert(g->params.data[i]->trainable);
    }
    /* PyTorch default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in of conv1 = 1*5*5 */
    cr_assert_eq(param(g, "conv1.weight")->init.kind, DN_INIT_UNIFORM);
    cr_assert_float_eq(param(g, "conv1.weight")->init.b, 0.2, 1e-12);
    cr_assert_float_eq(param(g, "fc1.bias")->init.a, -0.05, 1e-12);
    cr_assert_eq(g->outputs.len, 1);
    cr_assert_str_eq(g->output_names.data[0], "logits");
    assert_shape(&g->outputs.data[0]->shape, 2, (int64_t[]){DN_DIM_N, 10});
    cr_assert_eq(g->inputs.len, 2);
    cr_assert_not(g->inputs.data[0]->train_only);
    cr_assert(g->inputs.data[1]->train_only);
    cr_assert_not_null(g->loss);
    cr_assert_eq(g->loss->def->kind, DN_OP_CROSS_ENTROPY);
    dn_graph_free(g);
}

Test(frontend, blocks_hyperparameters_and_if)
{
    const char *src = "block mlp(x, width: int, act: bool = true, scale: float = 1) {\n"
                      "  x = x |> fc: dense(width * 2)\n"
                      "  if act { x = x |> relu } else { x = x |> tanh }\n"
                      "  return x * scale\n"
                      "}\n"
                      "model m(x: f32[N, 3]) -> (y: f32[N, 8]) {\n"
                      "  a = first: mlp(x, 2)\n"
                      "  y = second: mlp(a, width=4, act=false, scale=3)\n"
                      "}\n";
    DnGraph *g = lower(src, NULL);
    cr_assert_not_null(g, "%s", cx.diags ? cx.diags->msg : "");
    assert_shape(&param(g, "first.fc.weight")->shape, 2, (int64_t[]){4, 3});
    assert_shape(&param(g, "second.fc.weight")->shape, 2, (int64_t[]){8, 4});
    DnOpKind want[] = {DN_OP_DENSE, DN_OP_RELU, DN_OP_SCALE, DN_OP_DENSE, DN_OP_TANH, DN_OP_SCALE};
    cr_assert_eq(g->ops.len, 6);
    for (int i = 0; i < 6; i++) cr_assert_eq(g->ops.data[i]->kind, want[i], "op %d", i);
    cr_assert_float_eq(dn_op_float(g->ops.data[5], "alpha"), 3.0, 1e-12);
    dn_graph_free(g);
}

Test(frontend, repeat_labels_and_automatic_names)
{
    const char *src = "block unit(x, c: int) {\n"
                      "  return x |> conv1: conv2d(c, 3, pad=1) |> conv2d(c, 1)\n"
                      "}\n"
                      "model m(x: f32[N, 2, 8, 8]) -> (y: f32[N, 4, 8, 8]) {\n"
                      "  x = layer1: repeat 2 as i { unit(x, 2 + 2 * i) }\n"
                      "  y = x |> conv2d(4, 1) |> conv2d(4, 1)\n"
                      "}\n";
    DnGraph *g = lower(src, NULL);
    cr_assert_not_null(g, "%s", cx.diags ? cx.diags->msg : "");
    const char *names[] = {
        "layer1.0.conv1.weight", "layer1.0.conv1.bias", "layer1.0.conv2d_0.weight", "layer1.0.conv2d_0.bias",
        "layer1.1.conv1.weight", "layer1.1.conv1.bias", "layer1.1.conv2d_0.weight", "layer1.1.conv2d_0.bias",
        "conv2d_0.weight",       "conv2d_0.bias",       "conv2d_1.weight",          "conv2d_1.bias"};
    cr_assert_eq(g->params.len, 12);
    for (int i = 0; i < 12; i++) cr_assert_str_eq(g->params.data[i]->name, names[i]);
    assert_shape(&param(g, "layer1.0.conv1.weight")->shape, 4, (int64_t[]){2, 2, 3, 3});
    assert_shape(&param(g, "layer1.1.conv1.weight")->shape, 4, (int64_t[]){4, 2, 3, 3});
    dn_graph_free(g);
}

Test(frontend, batchnorm_and_dropout)
{
    DnGraph *g = lower("model m(x: f32[N, 3, 4, 4]) -> (y: f32[N, 3, 4, 4]) {\n"
                       "  y = x |> bn: batchnorm |> dropout(0.5) |> dropout(0.25)\n}\n",
                       NULL);
    cr_assert_not_null(g, "%s", cx.diags ? cx.diags->msg : "");
    cr_assert_eq(param(g, "bn.running_var")->kind, DN_PARAM_BUFFER);
    cr_assert_eq(param(g, "bn.running_var")->init.kind, DN_INIT_ONES);
    cr_assert_eq(param(g, "bn.weight")->kind, DN_PARAM_WEIGHT);
    cr_assert_eq(param(g, "bn.num_batches_tracked")->dtype, DN_DTYPE_I64);
    cr_assert_eq(param(g, "bn.num_batches_tracked")->shape.rank, 0);
    cr_assert_eq(g->ops.data[0]->kind, DN_OP_BATCHNORM);
    cr_assert_eq(dn_op_int(g->ops.data[1], "salt"), 1);
    cr_assert_eq(dn_op_int(g->ops.data[2], "salt"), 2);
    dn_graph_free(g);
}

static const DnOp *op_of(const DnGraph *g, DnOpKind k)
{
    for (int i = 0; i < g->ops.len; i++)
        if (g->ops.data[i]->kind == k) return g->ops.data[i];
    cr_assert_fail("no %s op", dn_op_info[k].name);
    return NULL;
}

static void assert_pair(const DnOp *op, const char *name, int64_t a, int64_t b)
{
    int n;
    const int64_t *v = dn_op_ints(op, name, &n);
    cr_assert(n == 2 && v[0] == a && v[1] == b, "%s %s is not [%lld, %lld]", dn_op_info[op->kind].name, name,
              (long long)a, (long long)b);
}

/* Layer arguments that are op attributes take their defaults from ops.def
 * (the values PyTorch's layers default to). */
Test(frontend, layer_arguments_default_as_their_ops)
{
    DnGraph *g = lower("model m(x: f32[N, 3, 8, 8]) -> (y: f32[N, 4]) {\n"
                       "  y = x |> c: conv2d(4, 3) |> bn: batchnorm |> maxpool(2) |> avgpool(kernel=[3, 1])\n"
                       "    |> dropout |> flatten |> d: dense(4) |> softmax\n}\n",
                       NULL);
    cr_assert_not_null(g, "%s", cx.diags ? cx.diags->msg : "");
    const DnOp *conv = op_of(g, DN_OP_CONV2D);
    assert_pair(conv, "stride", 1, 1);
    assert_pair(conv, "pad", 0, 0);
    assert_pair(conv, "dilation", 1, 1);
    cr_expect_eq(dn_op_int(conv, "groups"), 1);
    cr_expect_str_eq(dn_op_str(conv, "act"), "none");
    cr_expect_float_eq(dn_op_float(op_of(g, DN_OP_BATCHNORM), "eps"), 1e-5, 1e-15);
    cr_expect_float_eq(dn_op_float(op_of(g, DN_OP_BATCHNORM), "momentum"), 0.1, 1e-15);
    assert_pair(op_of(g, DN_OP_MAXPOOL2D), "stride", 2, 2); /* stride = kernel */
    assert_pair(op_of(g, DN_OP_MAXPOOL2D), "pad", 0, 0);
    assert_pair(op_of(g, DN_OP_AVGPOOL2D), "stride", 3, 1);
    cr_expect_float_eq(dn_op_float(op_of(g, DN_OP_DROPOUT), "p"), 0.5, 1e-15);
    cr_expect_str_eq(dn_op_str(op_of(g, DN_OP_DENSE), "act"), "none");
    cr_expect_eq(dn_op_int(op_of(g, DN_OP_SOFTMAX), "axis"), 1); /* the last axis */
    dn_graph_free(g);
}

/* Labels may be numbers, as PyTorch names the children of an nn.Sequential,
 * at the top level of a model as in blocks; "0.1" (one number token) is two
 * parts of a path. */
Test(frontend, numeric_labels_name_parameters_as_sequential_does)
{
    DnGraph *g = lower("model m(x: f32[N, 16]) -> (y: f32[N, 4]) {\n"
                       "  y = x |> 0: dense(8) |> relu |> 2: dense(4)\n}\n",
                       NULL);
    cr_assert_not_null(g, "%s", cx.diags ? cx.diags->msg : "");
    static const char *const want[] = {"0.weight", "0.bias", "2.weight", "2.bias"};
    cr_assert_eq(g->params.len, 4);
    for (int i = 0; i < 4; i++) cr_expect_str_eq(g->params.data[i]->name, want[i]);
    assert_shape(&param(g, "0.weight")->shape, 2, (int64_t[]){8, 16});
    assert_shape(&param(g, "2.weight")->shape, 2, (int64_t[]){4, 8});
    dn_graph_free(g);
    g = lower("block pair(x) {\n  return x |> 0: dense(8) |> relu\n}\n"
              "model m(x: f32[N, 16]) -> (y: f32[N, 4]) {\n"
              "  y = x |> 0: pair |> 1.0.1: dense(4)\n}\n"
              "train m {\n  t: f32[N, 4]\n  loss = mse(y, t)\n  optimizer = sgd(lr=1)\n  freeze 0, 1.0\n}\n",
              NULL);
    cr_assert_not_null(g, "%s", cx.diags ? cx.diags->msg : "");
    cr_expect_not(param(g, "0.0.weight")->trainable);
    cr_expect_not(param(g, "1.0.1.bias")->trainable);
    dn_graph_free(g);
}

/* Golden: the parameter names, shapes and order equal the state_dict() keys
 * of the PyTorch modules in the comments (written down from PyTorch; no
 * Python at test time). */
Test(frontend, sequential_names_are_pytorch_state_dict_keys)
{
    static const struct {
        const char *src; /* model body: y = x |> ... */
        const char *in, *out;
        int n;
        struct {
            const char *name;
            int rank;
            int64_t dim[4];
        } want[8];
    } cases[] = {
        /* nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)) */
        {"0: dense(8) |> relu |> 2: dense(4)",
         "f32[N, 16]",
         "f32[N, 4]",
         4,
         {{"0.weight", 2, {8, 16}}, {"0.bias", 1, {8}}, {"2.weight", 2, {4, 8}}, {"2.bias", 1, {4}}}},
        /* nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()) */
        {"0: conv2d(8, 3) |> 1: batchnorm |> relu",
         "f32[N, 3, 8, 8]",
         "f32[N, 8, 6, 6]",
         7,
         {{"0.weight", 4, {8, 3, 3, 3}},
          {"0.bias", 1, {8}},
          {"1.weight", 1, {8}},
          {"1.bias", 1, {8}},
          {"1.running_mean", 1, {8}},
          {"1.running_var", 1, {8}},
          {"1.num_batches_tracked", 0, {0}}}},
        /* nn.Sequential(nn.Sequential(nn.Linear(16, 8), nn.ReLU()), nn.Linear(8, 4)) */
        {"0.0: dense(8) |> relu |> 1: dense(4)",
         "f32[N, 16]",
         "f32[N, 4]",
         4,
         {{"0.0.weight", 2, {8, 16}}, {"0.0.bias", 1, {8}}, {"1.weight", 2, {4, 8}}, {"1.bias", 1, {4}}}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char src[512];
        snprintf(src, sizeof src, "model m(x: %s) -> (y: %s) {\n  y = x |> %s\n}\n", cases[c].in, cases[c].out,
                 cases[c].src);
        DnGraph *g = lower(src, NULL);
        cr_assert_not_null(g, "%s: %s", cases[c].src, cx.diags ? cx.diags->msg : "");
        cr_assert_eq(g->params.len, cases[c].n, "%s", cases[c].src);
        for (int i = 0; i < cases[c].n; i++) {
            cr_expect_str_eq(g->params.data[i]->name, cases[c].want[i].name, "%s", cases[c].src);
            assert_shape(&g->params.data[i]->shape, cases[c].want[i].rank, cases[c].want[i].dim);
        }
        dn_graph_free(g);
    }
}

Test(frontend, freeze_marks_label_prefixes)
{
    DnGraph *g = lower("model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n"
                       "  y = x |> enc: dense(4) |> enc2: dense(4) |> bn: batchnorm\n}\n"
                       "train m {\n  t: f32[N, 4]\n  loss = mse(y, t)\n  optimizer = sgd(lr=1)\n  freeze enc, bn\n}\n",
                       NULL);
    cr_assert_not_null(g, "%s", cx.diags ? cx.diags->msg : "");
    cr_assert_not(param(g, "enc.weight")->trainable);
    cr_assert_not(param(g, "enc.bias")->trainable);
    cr_assert(param(g, "enc2.weight")->trainable); /* "enc" is not a prefix label of "enc2" */
    cr_assert_not(param(g, "bn.weight")->trainable);
    dn_graph_free(g);
}

/* Every attribute of the update op's schema is present, in schema order. */
static void assert_complete(const DnOptimSpec *o)
{
    const char *s = dn_op_info[o->kind].attrs;
    int n = 0;
    while (*s) {
        while (*s == ' ') s++;
        size_t len = strcspn(s, ":");
        cr_assert_lt(n, o->nattrs);
        cr_assert(strlen(o->attrs[n].name) == len && !strncmp(o->attrs[n].name, s, len), "attr %d is %s", n,
                  o->attrs[n].name);
        n++;
        s += strcspn(s, " ");
    }
    cr_assert_eq(n, o->nattrs);
}

static const DnAttr *optim_attr(const DnOptimSpec *o, const char *name)
{
    for (int i = 0; i < o->nattrs; i++)
        if (!strcmp(o->attrs[i].name, name)) return &o->attrs[i];
    cr_assert_fail("no attribute %s", name);
    return NULL;
}

static const DnOptimSpec *optim_of(const char *opt)
{
    static char src[1024];
    snprintf(src, sizeof src,
             "model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n  y = x |> dense(4)\n}\n"
             "train m {\n  t: f32[N, 4]\n  loss = mse(y, t)\n  optimizer = %s\n}\n",
             opt);
    if (optim_graph) dn_graph_free(optim_graph);
    DnGraph *g = optim_graph = lower(src, NULL);
    cr_assert_not_null(g, "%s", cx.diags ? cx.diags->msg : "");
    cr_assert_not_null(g->optim);
    assert_complete(g->optim);
    return g->optim; /* valid until the next call (its graph is freed then, or at teardown) */
}

Test(frontend, optimizer_specs)
{
    const DnOptimSpec *o =
        optim_of("sgd(lr=0.1, momentum=0.9, nesterov=true, schedule=cosine(100, min_lr=0.01), warmup=3)");
    cr_assert_eq(o->kind, DN_OP_SGD_UPDATE);
    cr_assert_float_eq(optim_attr(o, "momentum")->f, 0.9, 1e-12);
    cr_assert_eq(optim_attr(o, "nesterov")->i, 1);
    cr_assert_str_eq(optim_attr(o, "sched")->s, "cosine");
    cr_assert_eq(optim_attr(o, "total_steps")->i, 100);
    cr_assert_float_eq(optim_attr(o, "min_lr")->f, 0.01, 1e-12);
    cr_assert_eq(optim_attr(o, "warmup")->i, 3);
    o = optim_of("adam(lr=2e-3, schedule=step(step_size=5, gamma=0.5))");
    cr_assert_eq(o->kind, DN_OP_ADAM_UPDATE);
    cr_assert_eq(optim_attr(o, "decoupled")->i, 0);
    cr_assert_float_eq(optim_attr(o, "weight_decay")->f, 0.0, 1e-12);
    cr_assert_str_eq(optim_attr(o, "sched")->s, "step");
    cr_assert_eq(optim_attr(o, "step_size")->i, 5);
    o = optim_of("adamw()");
    cr_assert_eq(o->kind, DN_OP_ADAM_UPDATE);
    cr_assert_eq(optim_attr(o, "decoupled")->i, 1);
    cr_assert_float_eq(optim_attr(o, "weight_decay")->f, 1e-2, 1e-12);
    cr_assert_float_eq(optim_attr(o, "lr")->f, 1e-3, 1e-12);
    cr_assert_str_eq(optim_attr(o, "sched")->s, "const");
    o = optim_of("adam()"); /* every default from adam_update's schema */
    cr_assert_eq(optim_attr(o, "lr")->f, 1e-3);
    cr_assert_eq(optim_attr(o, "beta1")->f, 0.9);
    cr_assert_eq(optim_attr(o, "beta2")->f, 0.999);
    cr_assert_eq(optim_attr(o, "eps")->f, 1e-8);
    cr_assert_eq(optim_attr(o, "weight_decay")->f, 0.0);
    o = optim_of("sgd(lr=0.5)");
    cr_assert_eq(optim_attr(o, "momentum")->f, 0.0);
    cr_assert_eq(optim_attr(o, "nesterov")->i, 0);
}

Test(frontend, model_choice)
{
    const char *src = "model a(x: f32[N, 4]) -> (y: f32[N, 4]) { y = x |> relu }\n"
                      "model b(x: f32[N, 4]) -> (y: f32[N, 4]) { y = x |> tanh }\n";
    DnGraph *g = lower(src, "b");
    cr_assert_not_null(g);
    cr_assert_str_eq(g->name, "b");
    cr_assert_eq(g->ops.data[0]->kind, DN_OP_TANH);
    dn_graph_free(g);
    cr_assert_null(dn_lower(&cx, parse(src), NULL));
    cr_assert_str_eq(cx.diags->msg, "the file defines 2 models; choose one with --model NAME");
}

Test(frontend, lowering_errors_return_null)
{
    DnGraph *g = lower("model m(x: f32[N, 784]) -> (y: f32[N, 6, 24, 24]) {\n  y = x |> c: conv2d(6, 5)\n}\n", NULL);
    cr_assert_null(g);
    cr_assert_eq(cx.nerr, 1);
    cr_assert_str_eq(cx.diags->msg, "conv2d expects a 4-d input, got f32[N, 784]");
    cr_assert_eq(cx.diags->loc.line, 2);
    cr_assert_eq(cx.diags->loc.col, 15);
}
