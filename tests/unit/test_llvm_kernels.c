/* test_llvm_kernels.c -- the LLVM backend end to end, op by op.
 *
 * Each case builds a one-op graph with the IR builder, plans it
 * (dn_module_plan: no passes), builds it with the "cpu" backend into a .so
 * (dn_build_library: object, link with the runtime, header), dlopens it, loads
 * deterministic weights through a safetensors file, runs inference through
 * the descriptor's api for N = 1 and 7 and compares with the naive double
 * references of support/ref_ops.c:  |got - ref| <= 1e-4 max|ref| + 1e-5.
 * Also: the LLVM struct layouts used for dnrt.h's structs, and the header's
 * copy of DNRT_COMMON_TYPES.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include "backends/gpu/gpu_internal.h"
#include "backends/host/host.h"
#include "passes/pipeline.h"
#include "ref_ops.h"
#include "runtime/safetensors.h"
#include "testlib.h"

#define MAXT 8

/* One compiled test model. */
typedef struct Case {
    DnCtx cx;
    DnGraph *g;
    DnGraph *train; /* optional training graph (params: g's, in order) */
    DnArena a;
    DnModule m;
    void *h;
    const dnrt_model_desc *d;
    dnrt_session *s;
    char dir[256];
    float *pdata[MAXT];   /* parameter values, by param index */
    const char *features; /* LLVM target features for the build (NULL: the host's) */
} Case;

/* S(rank, dims...): a shape literal, e.g. S(2, NN, I(4)). */
#define S(rank, ...) dn_shape_make(rank, (int64_t[]){__VA_ARGS__})
#define NN           ((int64_t)DN_DIM_N)
#define I(x)         ((int64_t)(x))

static void start(Case *t, const char *name)
{
    memset(t, 0, sizeof *t);
    dn_ctx_init(&t->cx);
    t->g = dn_graph_new(name);
}

static DnValue *input(Case *t, const char *name, DnShape s)
{
    DnLoc loc = {0};
    return dn_graph_add_input(t->g, name, DN_DTYPE_F32, &s, loc);
}

/* A parameter filled with pseudo-random values (seed from its index). */
static DnValue *param(Case *t, const char *name, DnShape s)
{
    DnLoc loc = {0};
    DnInit init = {.kind = DN_INIT_ZEROS, .a = 0, .b = 0};
    DnParam *p = dn_graph_add_param(t->g, name, DN_PARAM_WEIGHT, DN_DTYPE_F32, &s, init, loc);
    int i = t->g->params.len - 1;
    int64_t n = dn_shape_numel_static(&s);
    t->pdata[i] = malloc(sizeof(float) * (size_t)n);
    ref_fill(t->pdata[i], n, 100 + (uint32_t)i, -1, 1);
    return p->value;
}

static DnValue *build(Case *t, DnOpKind kind, int nin, DnValue **in, int nattrs, const DnAttr *attrs)
{
    DnLoc loc = {0};
    DnValue *v = dn_build1(&t->cx, t->g, kind, nin, in, nattrs, attrs, loc);
    if (!v) dn_ctx_print_diags(&t->cx, stderr);
    cr_assert_not_null(v, "builder rejected %s", dn_op_info[kind].name);
    return v;
}

/* Plans, compiles, links and loads the graph; creates a 2-thread session
 * and loads the parameters from a safetensors file. */
static void compile(Case *t)
{
    DnGraph *g = t->g;
    float lr = t->m.lr;
    t->m = (DnModule){.name = g->name, .infer = g, .train = t->train, .lr = lr};
    dn_module_plan(&t->m, &t->a, NULL);
    snprintf(t->dir, sizeof t->dir, "/tmp/dnnc-llvm-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    char so[300], st[300];
    snprintf(so, sizeof so, "%s/m.so", t->dir);
    snprintf(st, sizeof st, "%s/w.safetensors", t->dir);
    DnBackendOptions o = {.opt_level = 3, .features = t->features};
    DnStatus rc = dn_build_library(&t->cx, dn_backend_lookup("cpu"), &t->m, &o, DNNC_RUNTIME_LIB, so);
    if (rc != DN_OK) dn_ctx_print_diags(&t->cx, stderr);
    cr_assert_eq(rc, DN_OK, "compile failed");
    t->h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(t->h, "dlopen: %s", dlerror());
    t->d = dlsym(t->h, "dnnc_descriptor");
    cr_assert_not_null(t->d);
    dnrt_options opt = {.threads = 2, .seed = 1};
    dnrt_error err = {0};
    t->s = t->d->api->create(t->d, &opt, &err);
    cr_assert_not_null(t->s, "create: %s", err.message);
    if (g->params.len == 0) return;
    dnrt_st_tensor ts[MAXT];
    for (int i = 0; i < g->params.len; i++) {
        const DnParam *p = g->params.data[i];
        ts[i] = (dnrt_st_tensor){.name = p->name,
                                 .dtype = DNRT_F32,
                                 .dtype_name = "F32",
                                 .rank = p->shape.rank,
                                 .data = t->pdata[i],
                                 .nbytes = sizeof(float) * (size_t)dn_shape_numel_static(&p->shape)};
        for (int d = 0; d < p->shape.rank; d++) ts[i].dim[d] = p->shape.dim[d];
    }
    cr_assert_eq(dnrt_st_write(st, g->params.len, ts, 0, NULL, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(t->d->api->load(t->s, st, &err), 0, "load: %s", err.message);
}

static void finish(Case *t)
{
    if (t->s) t->d->api->destroy(t->s);
    if (t->h) dlclose(t->h);
    for (int i = 0; i < MAXT; i++) free(t->pdata[i]);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    dn_test_run(cmd, NULL, 0);
    dn_graph_free(t->g);
    if (t->train) dn_graph_free(t->train);
    dn_arena_free(&t->a);
    dn_ctx_free(&t->cx);
}

/* Elements of 'v' for batch size n. */
static int64_t count(const DnValue *v, int64_t n)
{
    return dn_shape_numel_static(&v->shape) * (dn_shape_has_n(&v->shape) ? n : 1);
}

/* Runs inference with pseudo-random inputs (returned in ins[], caller frees)
 * and returns output 0 (caller frees). */
static float *run(Case *t, int64_t n, float **ins)
{
    const void *ip[MAXT];
    for (int i = 0; i < t->g->inputs.len; i++) {
        int64_t c = count(t->g->inputs.data[i], n);
        ins[i] = malloc(sizeof(float) * (size_t)c);
        ref_fill(ins[i], c, 7 + (uint32_t)i + 31 * (uint32_t)n, -2, 2);
        ip[i] = ins[i];
    }
    int64_t c = count(t->g->outputs.data[0], n);
    float *y = malloc(sizeof(float) * (size_t)(c + 1));
    for (int64_t i = 0; i < c; i++) y[i] = 12345.0f;
    void *op[1] = {y};
    dnrt_error err = {0};
    cr_assert_eq(t->d->api->infer(t->s, n, ip, op, &err), 0, "infer: %s", err.message);
    return y;
}

static void expect_close(const float *got, const float *ref, int64_t n, const char *what, int64_t batch)
{
    int64_t bad = dn_test_close_enough(got, ref, n, 1e-4, 1e-5);
    cr_expect_eq(bad, -1, "%s (N=%lld): element %lld: got %g, want %g", what, (long long)batch, (long long)bad,
                 bad >= 0 ? got[bad] : 0.0, bad >= 0 ? ref[bad] : 0.0);
}

static const int64_t batches[] = {1, 7};

/* ---- layout -------------------------------------------------------------- */

Test(llvm, struct_layouts_match_dnrt_h)
{
    DnCtx cx;
    dn_ctx_init(&cx);
    DnBackendOptions o = {.opt_level = 0};
    LLVMTargetMachineRef tm = dn_host_target_machine(&cx, &o);
    cr_assert_not_null(tm);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMContextRef ctx = LLVMContextCreate();
#define CHECK(T, ty, i, field)                                                                                         \
    cr_expect_eq(LLVMOffsetOfElement(td, ty, i), offsetof(T, field), #T "." #field ": llvm %llu, C %zu",               \
                 LLVMOffsetOfElement(td, ty, i), offsetof(T, field))
    LLVMTypeRef call = dn_host_call_type(ctx);
    CHECK(dnrt_call, call, DN_CALL_N, n);
    CHECK(dnrt_call, call, DN_CALL_ARENA, arena);
    CHECK(dnrt_call, call, DN_CALL_STATE, state);
    CHECK(dnrt_call, call, DN_CALL_INPUTS, inputs);
    CHECK(dnrt_call, call, DN_CALL_OUTPUTS, outputs);
    CHECK(dnrt_call, call, DN_CALL_POOL, pool);
    CHECK(dnrt_call, call, DN_CALL_STEP, step);
    CHECK(dnrt_call, call, DN_CALL_SEED, seed);
    CHECK(dnrt_call, call, DN_CALL_LR, lr);
    CHECK(dnrt_call, call, DN_CALL_DEV, dev);
    CHECK(dnrt_call, call, DN_CALL_T, t);
    cr_expect_eq(LLVMABISizeOfType(td, call), sizeof(dnrt_call));
    LLVMTypeRef td_t = dn_host_tensor_desc_type(ctx);
    CHECK(dnrt_tensor_desc, td_t, 0, name);
    CHECK(dnrt_tensor_desc, td_t, 1, dtype);
    CHECK(dnrt_tensor_desc, td_t, 2, rank);
    CHECK(dnrt_tensor_desc, td_t, 3, dim);
    CHECK(dnrt_tensor_desc, td_t, 4, offset);
    CHECK(dnrt_tensor_desc, td_t, 5, kind);
    CHECK(dnrt_tensor_desc, td_t, 6, trainable);
    CHECK(dnrt_tensor_desc, td_t, 7, init);
    CHECK(dnrt_tensor_desc, td_t, 8, init_a);
    CHECK(dnrt_tensor_desc, td_t, 9, init_b);
    CHECK(dnrt_tensor_desc, td_t, 10, train_only);
    CHECK(dnrt_tensor_desc, td_t, 11, valid_min);
    CHECK(dnrt_tensor_desc, td_t, 12, valid_max);
    CHECK(dnrt_tensor_desc, td_t, 13, has_valid_extra);
    CHECK(dnrt_tensor_desc, td_t, 14, valid_extra);
    CHECK(dnrt_tensor_desc, td_t, 15, init_zero_row);
    cr_expect_eq(LLVMABISizeOfType(td, td_t), sizeof(dnrt_tensor_desc));
    LLVMTypeRef md = dn_host_model_desc_type(ctx);
    CHECK(dnrt_model_desc, md, 0, abi_version);
    CHECK(dnrt_model_desc, md, 1, name);
    CHECK(dnrt_model_desc, md, 2, ninputs);
    CHECK(dnrt_model_desc, md, 3, inputs);
    CHECK(dnrt_model_desc, md, 4, noutputs);
    CHECK(dnrt_model_desc, md, 5, outputs);
    CHECK(dnrt_model_desc, md, 6, nstate);
    CHECK(dnrt_model_desc, md, 7, state);
    CHECK(dnrt_model_desc, md, 8, state_bytes);
    CHECK(dnrt_model_desc, md, 9, infer_arena_n);
    CHECK(dnrt_model_desc, md, 10, infer_arena_b);
    CHECK(dnrt_model_desc, md, 11, infer);
    CHECK(dnrt_model_desc, md, 12, trains);
    CHECK(dnrt_model_desc, md, 13, train_arena_n);
    CHECK(dnrt_model_desc, md, 14, train_arena_b);
    CHECK(dnrt_model_desc, md, 15, train);
    CHECK(dnrt_model_desc, md, 16, lr);
    CHECK(dnrt_model_desc, md, 17, api);
    CHECK(dnrt_model_desc, md, 18, infer_arena_t);
    CHECK(dnrt_model_desc, md, 19, train_arena_t);
    CHECK(dnrt_model_desc, md, 20, gpu);
    CHECK(dnrt_model_desc, md, 21, seq_bound);
    cr_expect_eq(LLVMABISizeOfType(td, md), sizeof(dnrt_model_desc));
    LLVMTypeRef ga = dn_gpu_arg_type(ctx), gl = dn_gpu_launch_type(ctx);
    LLVMTypeRef gi = dn_gpu_image_type(ctx), gp = dn_gpu_program_type(ctx);
    CHECK(dnrt_gpu_arg, ga, 0, kind);
    CHECK(dnrt_gpu_arg, ga, 1, index);
    CHECK(dnrt_gpu_arg, ga, 2, a);
    CHECK(dnrt_gpu_arg, ga, 3, b);
    CHECK(dnrt_gpu_arg, ga, 4, f);
    cr_expect_eq(LLVMABISizeOfType(td, ga), sizeof(dnrt_gpu_arg));
    CHECK(dnrt_gpu_launch, gl, 0, kernel);
    CHECK(dnrt_gpu_launch, gl, 1, nargs);
    CHECK(dnrt_gpu_launch, gl, 2, args);
    CHECK(dnrt_gpu_launch, gl, 3, items_n);
    CHECK(dnrt_gpu_launch, gl, 4, items_b);
    CHECK(dnrt_gpu_launch, gl, 5, group);
    CHECK(dnrt_gpu_launch, gl, 6, guard);
    CHECK(dnrt_gpu_launch, gl, 7, batch);
    cr_expect_eq(LLVMABISizeOfType(td, gl), sizeof(dnrt_gpu_launch));
    CHECK(dnrt_gpu_image, gi, 0, arch);
    CHECK(dnrt_gpu_image, gi, 1, data);
    CHECK(dnrt_gpu_image, gi, 2, size);
    cr_expect_eq(LLVMABISizeOfType(td, gi), sizeof(dnrt_gpu_image));
    CHECK(dnrt_gpu_program, gp, 0, api);
    CHECK(dnrt_gpu_program, gp, 1, source);
    CHECK(dnrt_gpu_program, gp, 2, nkernels);
    CHECK(dnrt_gpu_program, gp, 3, kernels);
    CHECK(dnrt_gpu_program, gp, 4, nimages);
    CHECK(dnrt_gpu_program, gp, 5, images);
    cr_expect_eq(LLVMABISizeOfType(td, gp), sizeof(dnrt_gpu_program));
#undef CHECK
    LLVMContextDispose(ctx);
    LLVMDisposeTargetData(td);
    LLVMDisposeTargetMachine(tm);
    dn_ctx_free(&cx);
}

/* The header repeats dnrt.h's DNRT_COMMON_TYPES block byte for byte. */
Test(llvm, header_common_types_match_dnrt_h)
{
    Case t;
    start(&t, "hdr");
    DnValue *x = input(&t, "image", S(2, NN, I(4)));
    dn_graph_add_output(t.g, "y", build(&t, DN_OP_RELU, 1, &x, 0, NULL));
    t.m = (DnModule){.name = "hdr", .infer = t.g, .state_graph = t.g};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dn_emit_header(&t.m, f);
    fclose(f);
    FILE *h = fopen(dn_test_src("runtime/include/dnrt.h"), "r");
    cr_assert_not_null(h);
    char text[20000];
    size_t n = fread(text, 1, sizeof text - 1, h);
    text[n] = 0;
    fclose(h);
    char *a = strstr(text, "#ifndef DNRT_COMMON_TYPES"), *e = a ? strstr(a, "#endif\n") : NULL;
    cr_assert(a && e);
    e[strlen("#endif\n")] = 0;
    cr_expect_not_null(strstr(buf, a), "header lacks dnrt.h's common block:\n%s", buf);
    cr_expect_not_null(strstr(buf, "int hdr_infer(hdr *m, int64_t n,\n    const float *image /* f32[N, 4] */,\n"
                                   "    float *y /* f32[N, 4] */,\n    dnrt_error *err);"),
                       "%s", buf);
    free(buf);
    dn_graph_free(t.g);
    dn_ctx_free(&t.cx);
}

/* ---- helpers for the op cases --------------------------------------------- */

/* Concrete dims of 'v' for batch n; returns the rank. */
static int dims(const DnValue *v, int64_t n, int64_t *d)
{
    for (int i = 0; i < v->shape.rank; i++) d[i] = v->shape.dim[i] == DN_DIM_N ? n : v->shape.dim[i];
    return v->shape.rank;
}

static void free_ins(Case *t, float **ins)
{
    for (int i = 0; i < t->g->inputs.len; i++) free(ins[i]);
}

/* Operand 'i' of the single op as data: an input's run data or a param's. */
static const float *operand(Case *t, DnValue *v, float **ins)
{
    return v->kind == DN_VAL_INPUT ? ins[v->index] : t->pdata[v->index];
}

/* ---- elementwise ------------------------------------------------------------ */

/* y = a <op> b; 'b_param': b is a parameter (static shape). */
static void binary_case(DnOpKind kind, char opc, DnShape as, DnShape bs, bool b_param)
{
    Case t;
    start(&t, "bin");
    DnValue *in[2] = {input(&t, "a", as), b_param ? param(&t, "b", bs) : input(&t, "b", bs)};
    DnValue *y = build(&t, kind, 2, in, 0, NULL);
    dn_graph_add_output(t.g, "y", y);
    compile(&t);
    for (int bi = 0; bi < 2; bi++) {
        int64_t n = batches[bi], ad[8], bd[8], yd[8];
        float *ins[MAXT];
        float *got = run(&t, n, ins);
        int64_t c = count(y, n);
        float *ref = malloc(sizeof(float) * (size_t)c);
        ref_binary(opc, operand(&t, in[0], ins), ad, dims(in[0], n, ad), operand(&t, in[1], ins), bd,
                   dims(in[1], n, bd), ref, yd, dims(y, n, yd));
        expect_close(got, ref, c, dn_op_info[kind].name, n);
        free(ref), free(got), free_ins(&t, ins);
    }
    finish(&t);
}

Test(llvm, add_same_shape) { binary_case(DN_OP_ADD, '+', S(3, NN, I(5), I(33)), S(3, NN, I(5), I(33)), false); }
Test(llvm, add_bias_broadcast)
{
    binary_case(DN_OP_ADD, '+', S(4, NN, I(3), I(4), I(5)), S(3, I(3), I(1), I(1)), true);
}
Test(llvm, sub_broadcast_both)
{
    binary_case(DN_OP_SUB, '-', S(4, NN, I(3), I(1), I(5)), S(3, I(1), I(4), I(1)), true);
}
Test(llvm, mul_broadcast_n) { binary_case(DN_OP_MUL, '*', S(2, NN, I(6)), S(2, NN, I(1)), false); }
Test(llvm, mul_over_batch) { binary_case(DN_OP_MUL, '*', S(3, NN, I(2), I(6)), S(3, I(1), I(2), I(6)), true); }
Test(llvm, div_scalar_like) { binary_case(DN_OP_DIV, '/', S(2, NN, I(9)), S(1, I(1)), true); }

static void unary_case(DnOpKind kind, char opc, double alpha)
{
    Case t;
    start(&t, "un");
    DnValue *x = input(&t, "x", S(3, NN, I(3), I(17)));
    DnAttr at = dn_attr_float("alpha", alpha);
    DnValue *y = build(&t, kind, 1, &x, kind == DN_OP_SCALE, &at);
    dn_graph_add_output(t.g, "y", y);
    compile(&t);
    for (int bi = 0; bi < 2; bi++) {
        int64_t n = batches[bi];
        float *ins[MAXT];
        float *got = run(&t, n, ins);
        int64_t c = count(y, n);
        float *ref = malloc(sizeof(float) * (size_t)c);
        ref_unary(opc, ins[0], ref, c, alpha);
        expect_close(got, ref, c, dn_op_info[kind].name, n);
        free(ref), free(got), free_ins(&t, ins);
    }
    finish(&t);
}

Test(llvm, relu) { unary_case(DN_OP_RELU, 'r', 0); }
Test(llvm, tanh) { unary_case(DN_OP_TANH, 't', 0); }
Test(llvm, sigmoid) { unary_case(DN_OP_SIGMOID, 's', 0); }
Test(llvm, scale) { unary_case(DN_OP_SCALE, 'k', -0.75); }

/* ---- conv2d ------------------------------------------------------------------ */

static void conv_case(int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW, int64_t s0, int64_t s1,
                      int64_t p0, int64_t p1, int64_t d0, int64_t d1, int64_t groups, bool bias, bool relu)
{
    Case t;
    start(&t, "conv");
    int64_t s[2] = {s0, s1}, p[2] = {p0, p1}, d[2] = {d0, d1};
    DnValue *in[3] = {input(&t, "x", S(4, NN, C, H, W)), param(&t, "w", S(4, O, C / groups, KH, KW)),
                      bias ? param(&t, "b", S(1, O)) : NULL};
    DnAttr at[5] = {dn_attr_ints("stride", 2, s), dn_attr_ints("pad", 2, p), dn_attr_ints("dilation", 2, d),
                    dn_attr_int("groups", groups), dn_attr_str("act", relu ? "relu" : "none")};
    DnValue *y = build(&t, DN_OP_CONV2D, bias ? 3 : 2, in, 5, at);
    dn_graph_add_output(t.g, "y", y);
    compile(&t);
    for (int bi = 0; bi < 2; bi++) {
        int64_t n = batches[bi];
        float *ins[MAXT];
        float *got = run(&t, n, ins);
        int64_t c = count(y, n);
        float *ref = malloc(sizeof(float) * (size_t)c);
        ref_conv2d(ins[0], t.pdata[0], bias ? t.pdata[1] : NULL, ref, n, C, H, W, O, KH, KW, s, p, d, groups, relu);
        expect_close(got, ref, c, "conv2d", n);
        free(ref), free(got), free_ins(&t, ins);
    }
    finish(&t);
}

Test(llvm, conv2d_plain) { conv_case(3, 8, 9, 4, 3, 3, 1, 1, 0, 0, 1, 1, 1, false, false); }
Test(llvm, conv2d_pad_bias_relu) { conv_case(3, 9, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true); }
Test(llvm, conv2d_stride2_pad) { conv_case(2, 11, 10, 3, 5, 4, 2, 2, 2, 1, 1, 1, 1, true, false); }
Test(llvm, conv2d_dilation) { conv_case(2, 12, 12, 3, 3, 3, 1, 2, 2, 1, 2, 3, 1, false, false); }
Test(llvm, conv2d_groups) { conv_case(4, 7, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, true, true); }
Test(llvm, conv2d_depthwise_stride2) { conv_case(4, 8, 8, 4, 3, 3, 2, 2, 1, 1, 1, 1, 4, true, false); }
Test(llvm, conv2d_1x1) { conv_case(5, 6, 6, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1, true, false); }

/* ---- pooling ----------------------------------------------------------------- */

static void pool_case(bool is_max, int64_t C, int64_t H, int64_t W, int64_t k0, int64_t k1, int64_t s0, int64_t s1,
                      int64_t p0, int64_t p1)
{
    Case t;
    start(&t, "pool");
    int64_t k[2] = {k0, k1}, s[2] = {s0, s1}, p[2] = {p0, p1};
    DnValue *x = input(&t, "x", S(4, NN, C, H, W));
    DnAttr at[3] = {dn_attr_ints("kernel", 2, k), dn_attr_ints("stride", 2, s), dn_attr_ints("pad", 2, p)};
    DnValue *y = build(&t, is_max ? DN_OP_MAXPOOL2D : DN_OP_AVGPOOL2D, 1, &x, 3, at);
    dn_graph_add_output(t.g, "y", y);
    compile(&t);
    for (int bi = 0; bi < 2; bi++) {
        int64_t n = batches[bi];
        float *ins[MAXT];
        float *got = run(&t, n, ins);
        int64_t c = count(y, n);
        float *ref = malloc(sizeof(float) * (size_t)c);
        ref_pool2d(is_max, ins[0], ref, n, C, H, W, k, s, p);
        expect_close(got, ref, c, is_max ? "maxpool2d" : "avgpool2d", n);
        free(ref), free(got), free_ins(&t, ins);
    }
    finish(&t);
}

Test(llvm, maxpool_2x2) { pool_case(true, 3, 8, 8, 2, 2, 2, 2, 0, 0); }
Test(llvm, maxpool_3x3_s2_p1) { pool_case(true, 2, 9, 10, 3, 3, 2, 2, 1, 1); }
Test(llvm, avgpool_2x2) { pool_case(false, 3, 8, 6, 2, 2, 2, 2, 0, 0); }
Test(llvm, avgpool_3x3_s1_p1) { pool_case(false, 2, 5, 7, 3, 3, 1, 1, 1, 1); }

/* ---- dense and matmul ---------------------------------------------------------- */

static void dense_case_for(DnShape xs, int64_t out, bool bias, bool relu, const char *features)
{
    Case t;
    start(&t, "dense");
    t.features = features;
    int64_t in_f = xs.dim[xs.rank - 1];
    DnValue *in[3] = {input(&t, "x", xs), param(&t, "w", S(2, out, in_f)), bias ? param(&t, "b", S(1, out)) : NULL};
    DnAttr at = dn_attr_str("act", relu ? "relu" : "none");
    DnValue *y = build(&t, DN_OP_DENSE, bias ? 3 : 2, in, 1, &at);
    dn_graph_add_output(t.g, "y", y);
    compile(&t);
    for (int bi = 0; bi < 2; bi++) {
        int64_t n = batches[bi];
        float *ins[MAXT];
        float *got = run(&t, n, ins);
        int64_t c = count(y, n);
        float *ref = malloc(sizeof(float) * (size_t)c);
        ref_dense(ins[0], t.pdata[0], bias ? t.pdata[1] : NULL, ref, count(in[0], n) / in_f, in_f, out, relu);
        expect_close(got, ref, c, "dense", n);
        free(ref), free(got), free_ins(&t, ins);
    }
    finish(&t);
}

static void dense_case(DnShape xs, int64_t out, bool bias, bool relu) { dense_case_for(xs, out, bias, relu, NULL); }

Test(llvm, dense_bias_relu) { dense_case(S(2, NN, I(37)), 10, true, true); }
/* 4 x 4 register blocks where the host has AVX-512's 32 vector registers,
 * 4 x 2 without: the second case names features without AVX-512 */
Test(llvm, dense_out_multiple_of_4) { dense_case(S(3, NN, I(7), I(40)), 12, true, true); }
Test(llvm, dense_out_multiple_of_4_16_registers)
{
    dense_case_for(S(3, NN, I(7), I(40)), 12, true, false, "+avx2,+fma");
}
Test(llvm, dense_no_bias) { dense_case(S(2, NN, I(16)), 5, false, false); }
Test(llvm, dense_3d_input) { dense_case(S(3, NN, I(4), I(6)), 3, true, false); }

/* y = op(a) @ op(b); a and b are inputs (b a param when 'b_param'). */
static void matmul_case(DnShape as, DnShape bs, int ta, int tb, bool b_param)
{
    Case t;
    start(&t, "mm");
    DnValue *in[2] = {input(&t, "a", as), b_param ? param(&t, "b", bs) : input(&t, "b", bs)};
    DnAttr at[2] = {dn_attr_int("trans_a", ta), dn_attr_int("trans_b", tb)};
    DnValue *y = build(&t, DN_OP_MATMUL, 2, in, 2, at);
    dn_graph_add_output(t.g, "y", y);
    compile(&t);
    for (int bi = 0; bi < 2; bi++) {
        int64_t n = batches[bi], ad[8] = {0}, bd[8] = {0};
        int ra = dims(in[0], n, ad), rb = dims(in[1], n, bd);
        int64_t M = ad[ra - 2 + ta], K = ad[ra - 1 - ta], P = bd[rb - 1 - tb], batch = 1;
        for (int i = 0; i < ra - 2; i++) batch *= ad[i];
        float *ins[MAXT];
        float *got = run(&t, n, ins);
        int64_t c = count(y, n);
        float *ref = malloc(sizeof(float) * (size_t)c);
        ref_matmul(operand(&t, in[0], ins), operand(&t, in[1], ins), ref, batch, M, K, P, ta, tb, rb > 2);
        expect_close(got, ref, c, "matmul", n);
        free(ref), free(got), free_ins(&t, ins);
    }
    finish(&t);
}

Test(llvm, matmul_batched) { matmul_case(S(3, NN, I(3), I(4)), S(3, NN, I(4), I(5)), 0, 0, false); }
Test(llvm, matmul_batched_trans) { matmul_case(S(4, NN, I(2), I(4), I(3)), S(4, NN, I(2), I(5), I(4)), 1, 1, false); }
Test(llvm, matmul_shared_b_trans) { matmul_case(S(3, NN, I(3), I(4)), S(2, I(5), I(4)), 0, 1, true); }
Test(llvm, matmul_n_rows) { matmul_case(S(2, NN, I(4)), S(2, I(4), I(6)), 0, 0, true); }
Test(llvm, matmul_n_inner) { matmul_case(S(2, NN, I(4)), S(2, NN, I(5)), 1, 0, false); }

/* ---- softmax ----------------------------------------------------------------- */

static void softmax_case(bool is_log, DnShape xs, int axis)
{
    Case t;
    start(&t, "sm");
    DnValue *x = input(&t, "x", xs);
    DnAttr at = dn_attr_int("axis", axis);
    DnValue *y = build(&t, is_log ? DN_OP_LOG_SOFTMAX : DN_OP_SOFTMAX, 1, &x, 1, &at);
    dn_graph_add_output(t.g, "y", y);
    compile(&t);
    for (int bi = 0; bi < 2; bi++) {
        int64_t n = batches[bi], xd[8] = {0}, outer = 1, inner = 1;
        int r = dims(x, n, xd);
        for (int i = 0; i < axis; i++) outer *= xd[i];
        for (int i = axis + 1; i < r; i++) inner *= xd[i];
        float *ins[MAXT];
        float *got = run(&t, n, ins);
        int64_t c = count(y, n);
        float *ref = malloc(sizeof(float) * (size_t)c);
        ref_softmax(is_log, ins[0], ref, outer, xd[axis], inner);
        expect_close(got, ref, c, is_log ? "log_softmax" : "softmax", n);
        free(ref), free(got), free_ins(&t, ins);
    }
    finish(&t);
}

Test(llvm, softmax_last) { softmax_case(false, S(2, NN, I(10)), 1); }
Test(llvm, softmax_middle) { softmax_case(false, S(3, NN, I(5), I(3)), 1); }
Test(llvm, softmax_over_n) { softmax_case(false, S(2, NN, I(3)), 0); }
Test(llvm, log_softmax_last) { softmax_case(true, S(3, NN, I(2), I(9)), 2); }
Test(llvm, log_softmax_middle) { softmax_case(true, S(3, NN, I(6), I(2)), 1); }

/* Large logits must not overflow: softmax of x + 1000 equals softmax of x. */
Test(llvm, softmax_is_stable)
{
    Case t;
    start(&t, "sm");
    DnValue *x = input(&t, "x", S(2, NN, I(4)));
    DnAttr at = dn_attr_int("axis", 1);
    DnValue *y = build(&t, DN_OP_SOFTMAX, 1, &x, 1, &at);
    dn_graph_add_output(t.g, "y", y);
    compile(&t);
    float in[4] = {1000, 1001, 999, 1000}, got[4], ref[4], base[4] = {0, 1, -1, 0};
    const void *ip[1] = {in};
    void *op[1] = {got};
    dnrt_error err;
    cr_assert_eq(t.d->api->infer(t.s, 1, ip, op, &err), 0, "%s", err.message);
    ref_softmax(0, base, ref, 1, 4, 1);
    expect_close(got, ref, 4, "softmax(x + 1000)", 1);
    finish(&t);
}

/* ---- shape ops ------------------------------------------------------------------ */

/* reshape feeding relu (the plan aliases it), and reshape as the output (a copy). */
Test(llvm, reshape_alias_and_copy)
{
    for (int as_output = 0; as_output < 2; as_output++) {
        Case t;
        start(&t, "rs");
        DnValue *x = input(&t, "x", S(3, NN, I(2), I(6)));
        int64_t shape[2] = {-1, 12};
        DnAttr at = dn_attr_ints("shape", 2, shape);
        DnValue *r = build(&t, DN_OP_RESHAPE, 1, &x, 1, &at);
        DnValue *y = as_output ? r : build(&t, DN_OP_RELU, 1, &r, 0, NULL);
        dn_graph_add_output(t.g, "y", y);
        compile(&t);
        for (int bi = 0; bi < 2; bi++) {
            int64_t n = batches[bi];
            float *ins[MAXT];
            float *got = run(&t, n, ins);
            int64_t c = count(y, n);
            float *ref = malloc(sizeof(float) * (size_t)c);
            ref_unary(as_output ? 'k' : 'r', ins[0], ref, c, 1.0);
            expect_close(got, ref, c, as_output ? "reshape (copy)" : "reshape+relu", n);
            free(ref), free(got), free_ins(&t, ins);
        }
        finish(&t);
    }
}

/* copy as an output (a memcpy into the output buffer), and inside the
 * graph, where the plan writes it in place over the relu that dies at it
 * (so its kernel has nothing to move). */
Test(llvm, copy_to_output_and_in_place)
{
    for (int inside = 0; inside < 2; inside++) {
        Case t;
        start(&t, "cp");
        DnValue *x = input(&t, "x", S(3, NN, I(5), I(7)));
        DnValue *r = inside ? build(&t, DN_OP_RELU, 1, &x, 0, NULL) : x;
        DnValue *c = build(&t, DN_OP_COPY, 1, &r, 0, NULL);
        DnValue *y = inside ? build(&t, DN_OP_TANH, 1, &c, 0, NULL) : c;
        dn_graph_add_output(t.g, "y", y);
        compile(&t);
        if (inside) {
            const DnBuf *br = &t.m.infer_plan->buf[r->id], *bc = &t.m.infer_plan->buf[c->id];
            cr_expect(br->kind == DN_BUF_ARENA && bc->kind == DN_BUF_ARENA && br->coef_n == bc->coef_n &&
                          br->offset == bc->offset,
                      "the copy is not in place over the relu");
        }
        for (int bi = 0; bi < 2; bi++) {
            int64_t n = batches[bi];
            float *ins[MAXT];
            float *got = run(&t, n, ins);
            int64_t k = count(y, n);
            float *ref = malloc(sizeof(float) * (size_t)k);
            if (inside) {
                ref_unary('r', ins[0], ref, k, 0);
                ref_unary('t', ref, ref, k, 0);
            } else {
                memcpy(ref, ins[0], sizeof(float) * (size_t)k);
            }
            expect_close(got, ref, k, inside ? "relu, copy, tanh" : "copy of the input", n);
            free(ref), free(got), free_ins(&t, ins);
        }
        finish(&t);
    }
}

static void transpose_case(DnShape xs, const int64_t *perm)
{
    Case t;
    start(&t, "tr");
    DnValue *x = input(&t, "x", xs);
    DnAttr at = dn_attr_ints("perm", xs.rank, perm);
    DnValue *y = build(&t, DN_OP_TRANSPOSE, 1, &x, 1, &at);
    dn_graph_add_output(t.g, "y", y);
    compile(&t);
    for (int bi = 0; bi < 2; bi++) {
        int64_t n = batches[bi], xd[8];
        int r = dims(x, n, xd);
        float *ins[MAXT];
        float *got = run(&t, n, ins);
        int64_t c = count(y, n);
        float *ref = malloc(sizeof(float) * (size_t)c);
        ref_transpose(ins[0], xd, r, perm, ref);
        expect_close(got, ref, c, "transpose", n);
        free(ref), free(got), free_ins(&t, ins);
    }
    finish(&t);
}

Test(llvm, transpose_4d) { transpose_case(S(4, NN, I(2), I(3), I(4)), (int64_t[]){0, 2, 3, 1}); }
Test(llvm, transpose_last_two) { transpose_case(S(3, NN, I(5), I(3)), (int64_t[]){0, 2, 1}); }

/* y = x + fill(value) exercises fill with N in its shape. */
Test(llvm, fill_with_n)
{
    Case t;
    start(&t, "fill");
    DnValue *x = input(&t, "x", S(2, NN, I(3)));
    int64_t shape[2] = {-1, 3};
    DnAttr at[2] = {dn_attr_float("value", 2.5), dn_attr_ints("shape", 2, shape)};
    DnValue *in[2] = {x, build(&t, DN_OP_FILL, 0, NULL, 2, at)};
    DnValue *y = build(&t, DN_OP_ADD, 2, in, 0, NULL);
    dn_graph_add_output(t.g, "y", y);
    compile(&t);
    for (int bi = 0; bi < 2; bi++) {
        int64_t n = batches[bi];
        float *ins[MAXT];
        float *got = run(&t, n, ins);
        float ref[21];
        for (int64_t i = 0; i < 3 * n; i++) ref[i] = ins[0][i] + 2.5f;
        expect_close(got, ref, 3 * n, "fill", n);
        free(got), free_ins(&t, ins);
    }
    finish(&t);
}

static void sum_to_case(DnShape xs, int rank, const int64_t *shape)
{
    Case t;
    start(&t, "st");
    DnValue *x = input(&t, "x", xs);
    DnAttr at = dn_attr_ints("shape", rank, shape);
    DnValue *y = build(&t, DN_OP_SUM_TO, 1, &x, 1, &at);
    dn_graph_add_output(t.g, "y", y);
    compile(&t);
    for (int bi = 0; bi < 2; bi++) {
        int64_t n = batches[bi], xd[8], yd[8];
        int xr = dims(x, n, xd), yr = dims(y, n, yd);
        float *ins[MAXT];
        float *got = run(&t, n, ins);
        int64_t c = count(y, n);
        float *ref = malloc(sizeof(float) * (size_t)c);
        ref_sum_to(ins[0], xd, xr, ref, yd, yr);
        expect_close(got, ref, c, "sum_to", n);
        free(ref), free(got), free_ins(&t, ins);
    }
    finish(&t);
}

Test(llvm, sum_to_over_batch) { sum_to_case(S(3, NN, I(3), I(4)), 2, (int64_t[]){3, 4}); }
Test(llvm, sum_to_bias_grad) { sum_to_case(S(4, NN, I(3), I(2), I(5)), 3, (int64_t[]){3, 1, 1}); }
Test(llvm, sum_to_keep_batch) { sum_to_case(S(3, NN, I(3), I(4)), 3, (int64_t[]){-1, 1, 4}); }

/* ---- training entry, descriptor and typed wrappers -------------------------- */

/* A model whose training graph lists the train-only input first: the
 * backend must still read inputs in descriptor order (x, then t). */
Test(llvm, train_entry_descriptor_and_wrappers)
{
    Case t;
    start(&t, "tw");
    DnLoc loc = {0};
    DnShape s3 = S(2, NN, I(3)), w3 = S(1, I(3));
    DnValue *in[2] = {input(&t, "x", s3), param(&t, "w", w3)};
    dn_graph_add_output(t.g, "y", build(&t, DN_OP_MUL, 2, in, 0, NULL));
    DnGraph *g = t.train = dn_graph_new("tw");
    DnValue *lab = dn_graph_add_input(g, "t", DN_DTYPE_F32, &s3, loc);
    lab->train_only = true;
    DnValue *x = dn_graph_add_input(g, "x", DN_DTYPE_F32, &s3, loc);
    DnInit zero = {.kind = DN_INIT_ZEROS, .a = 0, .b = 0};
    DnValue *w = dn_graph_add_param(g, "w", DN_PARAM_WEIGHT, DN_DTYPE_F32, &w3, zero, loc)->value;
    DnValue *y = dn_build1(&t.cx, g, DN_OP_MUL, 2, (DnValue *[]){x, w}, 0, NULL, loc);
    DnValue *d = dn_build1(&t.cx, g, DN_OP_SUB, 2, (DnValue *[]){y, lab}, 0, NULL, loc);
    DnValue *sq = dn_build1(&t.cx, g, DN_OP_MUL, 2, (DnValue *[]){d, d}, 0, NULL, loc);
    DnAttr at = dn_attr_ints("shape", 0, NULL);
    DnValue *loss = dn_build1(&t.cx, g, DN_OP_SUM_TO, 1, &sq, 1, &at, loc);
    cr_assert_not_null(loss);
    dn_graph_add_output(g, "loss", loss);
    t.m.lr = 0.5f;
    compile(&t);

    const dnrt_model_desc *D = t.d;
    cr_expect_eq(D->abi_version, DNRT_ABI_VERSION);
    cr_expect_str_eq(D->name, "tw");
    cr_assert_eq(D->ninputs, 2);
    cr_expect_str_eq(D->inputs[0].name, "x");
    cr_expect_eq(D->inputs[0].train_only, 0);
    cr_expect_str_eq(D->inputs[1].name, "t");
    cr_expect_eq(D->inputs[1].train_only, 1);
    cr_expect_eq(D->inputs[1].rank, 2);
    cr_expect_eq(D->inputs[1].dim[0], -1);
    cr_expect_eq(D->inputs[1].dim[1], 3);
    cr_assert_eq(D->noutputs, 1);
    cr_expect_str_eq(D->outputs[0].name, "y");
    cr_assert_eq(D->nstate, 1);
    cr_expect_str_eq(D->state[0].name, "w");
    cr_expect_eq(D->state[0].kind, DNRT_STATE_WEIGHT);
    cr_expect_eq(D->trains, 1);
    cr_expect_not_null(D->train);
    cr_expect_float_eq(D->lr, 0.5f, 1e-7);

    typedef int (*train_fn)(void *, int64_t, const float *, const float *, float *, dnrt_error *);
    typedef int (*infer_fn)(void *, int64_t, const float *, float *, dnrt_error *);
    train_fn step = (train_fn)dlsym(t.h, "tw_train_step");
    infer_fn inf = (infer_fn)dlsym(t.h, "tw_infer");
    void (*set_lr)(void *, float) = (void (*)(void *, float))dlsym(t.h, "tw_set_lr");
    float (*get_lr)(void *) = (float (*)(void *))dlsym(t.h, "tw_get_lr");
    int64_t (*nsteps)(void *) = (int64_t(*)(void *))dlsym(t.h, "tw_step");
    const dnrt_model_desc *(*describe)(void) = (const dnrt_model_desc *(*)(void))dlsym(t.h, "tw_describe");
    cr_assert(step && inf && set_lr && get_lr && nsteps && describe);
    cr_expect_eq(describe(), D);
    float xs[21], ts[21], ys[21], l = -1;
    ref_fill(xs, 21, 3, -1, 1);
    ref_fill(ts, 21, 4, -1, 1);
    dnrt_error err = {0};
    cr_assert_eq(step(t.s, 7, xs, ts, &l, &err), 0, "%s", err.message);
    double want = 0;
    for (int i = 0; i < 21; i++) {
        double e = (double)xs[i] * t.pdata[0][i % 3] - ts[i];
        want += e * e;
    }
    cr_expect(fabs(l - want) <= 1e-4 * want + 1e-5, "loss %g, want %g", l, want);
    cr_expect_eq(nsteps(t.s), 1);
    set_lr(t.s, 0.25f);
    cr_expect_float_eq(get_lr(t.s), 0.25f, 1e-7);
    cr_assert_eq(inf(t.s, 7, xs, ys, &err), 0, "%s", err.message);
    for (int i = 0; i < 21; i++) cr_expect_float_eq(ys[i], xs[i] * t.pdata[0][i % 3], 1e-6);
    finish(&t);
}

/* ---- linking ------------------------------------------------------------------- */

/* A failing link reports the compiler's status and keeps the old library. */
Test(llvm, link_failure_keeps_old_library)
{
    char dir[] = "/tmp/dnnc-link-XXXXXX", so[300], obj[300], out[600];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(so, sizeof so, "%s/m.so", dir);
    snprintf(obj, sizeof obj, "%s/m.o", dir);
    FILE *f = fopen(so, "w");
    fputs("old", f);
    fclose(f);
    f = fopen(obj, "w");
    fputs("not an object", f);
    fclose(f);
    const char *ccs[2] = {"false", "/nonexistent/cc"};
    for (int i = 0; i < 2; i++) {
        DnCtx cx;
        dn_ctx_init(&cx);
        setenv("DNNC_CC", ccs[i], 1);
        DnObjects objs = {0};
        dn_objects_add(&objs, obj);
        cr_expect_eq(dn_link_shared(&cx, &objs, DNNC_RUNTIME_LIB, so), DN_ERR);
        dn_objects_release(&objs); /* not a temporary: stays */
        unsetenv("DNNC_CC");
        cr_expect_eq(cx.nerr, 1);
        cr_expect_not_null(cx.diags && strstr(cx.diags->msg, i ? "cannot run" : "exited with status 1"), "%s",
                           cx.diags ? cx.diags->msg : "(none)");
        dn_ctx_free(&cx);
    }
    f = fopen(so, "r");
    char buf[16] = {0};
    cr_assert_not_null(fgets(buf, sizeof buf, f));
    fclose(f);
    cr_expect_str_eq(buf, "old");
    snprintf(out, sizeof out, "ls '%s' | wc -l", dir);
    char n[32];
    dn_test_run(out, n, sizeof n);
    cr_expect_eq(atoi(n), 2, "temporary files left in %s", dir);
    snprintf(out, sizeof out, "rm -rf '%s'", dir);
    dn_test_run(out, NULL, 0);
}

/* An unknown --cpu is a diagnostic, not an LLVM abort. */
Test(llvm, unknown_cpu_is_a_diagnostic)
{
    DnCtx cx;
    dn_ctx_init(&cx);
    DnBackendOptions o = {.cpu = "no-such-cpu", .opt_level = 2};
    LLVMTargetMachineRef tm = dn_host_target_machine(&cx, &o);
    cr_expect_null(tm);
    cr_expect_eq(cx.nerr, 1);
    cr_expect(cx.diags && strstr(cx.diags->msg, "no-such-cpu"), "%s", cx.diags ? cx.diags->msg : "(none)");
    if (tm) LLVMDisposeTargetMachine(tm);
    dn_ctx_free(&cx);
    dn_ctx_init(&cx);
    o.cpu = "x86-64";
    tm = dn_host_target_machine(&cx, &o);
    cr_expect_not_null(tm);
    cr_expect_eq(cx.nerr, 0);
    if (tm) LLVMDisposeTargetMachine(tm);
    dn_ctx_free(&cx);
}
