/* test_backends.c -- the table of targets and the check that runs before
 * code generation.
 *
 * Every backend of dn_backend_table is found by its name and asked, for
 * every op kind of ir/ops.def, whether it has a kernel; each kind it lacks
 * must make dn_backend_check fail with a diagnostic naming the op.  A
 * test-local backend that lacks tanh (and sgd_update) drives the diagnostic
 * path through the real check and dn_build_library on a compiled .dnn: the
 * message names the op and its source line, each kind is reported once, the
 * training graph is checked too, and no code is generated or linked.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "backends/backend.h"
#include "frontend/frontend.h"
#include "passes/pipeline.h"
#include "testlib.h"

/* The diagnostics of 'cx' as dnnc prints them (caller frees). */
static char *diag_text(DnCtx *cx)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    cr_assert_not_null(f);
    dn_ctx_print_diags(cx, f);
    fclose(f);
    return s;
}

/* A module whose inference graph is  y = relu(x)  at m.dnn:3:7. */
static DnOp *one_op_module(DnCtx *cx, DnModule *m)
{
    DnGraph *g = dn_graph_new("m");
    DnShape s = {.rank = 2, .dim = {DN_DIM_N, 4}};
    DnLoc loc = {"m.dnn", 3, 7};
    DnValue *x = dn_graph_add_input(g, "x", DN_DTYPE_F32, &s, loc);
    DnOp *op = dn_build(cx, g, DN_OP_RELU, 1, &x, 0, NULL, loc);
    cr_assert_not_null(op);
    dn_graph_add_output(g, "y", op->out[0]);
    *m = (DnModule){.name = "m", .infer = g};
    return op;
}

Test(backends, every_row_answers_for_every_op_kind)
{
    cr_assert_gt(dn_backend_count, 0);
    cr_expect_eq(dn_backend_lookup("cpu"), dn_backend_table[0], "the default target 'cpu' is not the first row");
    cr_expect_null(dn_backend_lookup("nope"));
    for (int b = 0; b < dn_backend_count; b++) {
        const DnBackend *be = dn_backend_table[b];
        cr_assert(be->name && be->name[0]);
        cr_expect_eq(dn_backend_lookup(be->name), be, "'%s' does not find its own row", be->name);
        cr_expect_not_null(be->emit_object, "%s", be->name);
        int nsupported = 0;
        for (int k = 0; k < DN_OP_COUNT; k++) {
            DnCtx cx;
            dn_ctx_init(&cx);
            DnModule m;
            DnOp *op = one_op_module(&cx, &m);
            op->kind = (DnOpKind)k; /* the check reads the kind and the location only */
            bool ok = !be->supports_op || be->supports_op(op);
            nsupported += ok;
            DnStatus st = dn_backend_check(&cx, be, &m);
            if (ok) {
                cr_expect_eq(st, DN_OK, "%s: supports %s, but the check fails", be->name, dn_op_info[k].name);
                cr_expect_eq(cx.nerr, 0);
            } else {
                char want[200], *got = diag_text(&cx);
                snprintf(want, sizeof want, "m.dnn:3:7: error: target '%s' has no kernel for op '%s'", be->name,
                         dn_op_info[k].name);
                cr_expect_eq(st, DN_ERR, "%s lacks %s, but the check passes", be->name, dn_op_info[k].name);
                cr_expect(strstr(got, want), "want '%s', got:\n%s", want, got);
                free(got);
            }
            dn_graph_free(m.infer);
            dn_ctx_free(&cx);
        }
        cr_log_info("target %s: kernels for %d of %d op kinds", be->name, nsupported, (int)DN_OP_COUNT);
    }
}

/* ---- a target without tanh and sgd_update --------------------------------- */

static int emitted;

static bool lacks_tanh_sgd(const DnOp *op) { return op->kind != DN_OP_TANH && op->kind != DN_OP_SGD_UPDATE; }

static DnStatus no_object(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, DnObjects *obj)
{
    (void)cx, (void)m, (void)o, (void)obj;
    emitted++;
    return DN_ERR;
}

static DnStatus no_text(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, FILE *out)
{
    (void)cx, (void)m, (void)o, (void)out;
    emitted++;
    return DN_ERR;
}

static const DnBackend partial = {"partial", "a test row", NULL, no_object, no_text, lacks_tanh_sgd, NULL};

static const char model[] = "model m(x: f32[N, 4]) -> (y: f32[N, 2]) {\n"
                            "  h = x |> dense(8)\n"
                            "  h = h |> tanh |> dense(8)\n"
                            "  y = h |> tanh |> dense(2)\n"
                            "}\n"
                            "\n"
                            "train m {\n"
                            "  t: f32[N, 2]\n"
                            "  loss = mse(y, t)\n"
                            "  optimizer = sgd(lr=0.1)\n"
                            "}\n";

Test(backends, missing_kernel_is_a_diagnostic_at_the_op_not_a_link_error)
{
    DnCtx cx;
    dn_ctx_init(&cx);
    DnArena a = {0};
    const char *src = dn_ctx_add_source(&cx, "m.dnn", model);
    DnGraph *g = dn_input_format("m.dnn")->load(&cx, "m.dnn", src, NULL, &a);
    char *text = diag_text(&cx);
    cr_assert(g && cx.nerr == 0, "%s", text);
    free(text);
    DnModule m;
    cr_assert_eq(dn_compile(&cx, g, NULL, &m, &a), DN_OK);
    cr_assert_not_null(m.train);

    cr_expect_eq(dn_backend_check(&cx, &partial, &m), DN_ERR);
    text = diag_text(&cx);
    cr_expect_eq(cx.nerr, 2, "one error per missing op kind:\n%s", text);
    cr_expect(strstr(text, "m.dnn:3:12: error: target 'partial' has no kernel for op 'tanh'"), "%s", text);
    cr_expect_null(strstr(text, "m.dnn:4:"), "the second tanh is reported again:\n%s", text);
    cr_expect(strstr(text, "m.dnn:10:") && strstr(text, "target 'partial' has no kernel for op 'sgd_update'"),
              "the training graph's sgd_update is not reported at the optimizer:\n%s", text);
    free(text);

    char dir[64], so[128];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-backends");
    snprintf(so, sizeof so, "%s/m.so", dir);
    DnBackendOptions o = {.opt_level = 0};
    int before = cx.nerr;
    cr_expect_eq(dn_build_library(&cx, &partial, &m, &o, DNNC_RUNTIME_LIB, so), DN_ERR);
    cr_expect_eq(cx.nerr, before + 2);
    cr_expect_eq(emitted, 0, "the backend generated code for a module it cannot run");
    cr_expect_neq(access(so, F_OK), 0, "a library was written");
    dn_test_rmtree(dir);

    dn_module_free(&m);
    dn_graph_free(g);
    dn_arena_free(&a);
    dn_ctx_free(&cx);
}
