/* test_pipeline.c -- dn_compile as a library (passes/pipeline.h): which
 * passes run on which graph and in what order (the after_pass hook sees
 * them), that a defining pass cannot be disabled, that no_train drops the
 * training graph, the learning rate read from the optimizer
 * (dn_optim_float), and print_after for a pass and for plan-memory.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "frontend/frontend.h"
#include "passes/pipeline.h"
#include "testlib.h"

static const char model[] = "model m(x: f32[N, 4]) -> (y: f32[N, 2]) {\n"
                            "  y = x |> dense(8) |> relu |> dense(2)\n"
                            "}\n"
                            "\n"
                            "train m {\n"
                            "  t: f32[N, 2]\n"
                            "  loss = mse(y, t)\n"
                            "  optimizer = sgd(lr=0.25, momentum=0.9)\n"
                            "}\n";

typedef struct Fixture {
    DnCtx cx;
    DnArena a;
    DnGraph *g;
    DnModule m;
} Fixture;

static void load(Fixture *f)
{
    memset(f, 0, sizeof *f);
    dn_ctx_init(&f->cx);
    const char *src = dn_ctx_add_source(&f->cx, "m.dnn", model);
    f->g = dn_input_format("m.dnn")->load(&f->cx, "m.dnn", src, NULL, &f->a);
    cr_assert(f->g && f->cx.nerr == 0);
}

static void unload(Fixture *f)
{
    dn_module_free(&f->m);
    dn_graph_free(f->g);
    dn_arena_free(&f->a);
    dn_ctx_free(&f->cx);
}

/* The hook's log: "name/i" or "name/t" per pass, comma separated. */
static DnStatus log_pass(void *arg, const DnPassInfo *p, DnGraph *g, bool training)
{
    (void)g;
    char *log = arg;
    size_t n = strlen(log);
    snprintf(log + n, 512 - n, "%s%s/%c", n ? "," : "", p->name, training ? 't' : 'i');
    return DN_OK;
}

Test(pipeline, default_order_on_both_graphs_and_lr)
{
    Fixture f;
    load(&f);
    char log[512] = "";
    DnCompileOptions o = {.after_pass = log_pass, .after_pass_arg = log};
    cr_assert_eq(dn_compile(&f.cx, f.g, &o, &f.m, &f.a), DN_OK);
    cr_expect_str_eq(log, "inference/i,tile-attention/i,training/i,canonicalize/i,fuse-conv/i,concat-views/i,"
                          "inference/t,tile-attention/t,training/t,canonicalize/t,fuse-conv/t,concat-views/t");
    cr_assert(f.m.infer && f.m.train && f.m.infer_plan && f.m.train_plan);
    cr_expect_eq(f.m.state_graph, f.m.train);
    cr_expect_float_eq(f.m.lr, 0.25f, 1e-7);
    cr_expect_str_eq(f.m.name, "m");
    unload(&f);
}

/* A defining pass cannot be switched off; an optimization can; no_train
 * leaves the inference graph only. */
Test(pipeline, disabled_passes_and_no_train)
{
    Fixture f;
    load(&f);
    char log[512] = "";
    DnCompileOptions o = {.no_train = true, .after_pass = log_pass, .after_pass_arg = log};
    for (int i = 0; i < dn_pass_count; i++) o.disabled[i] = true;
    cr_assert_eq(dn_compile(&f.cx, f.g, &o, &f.m, &f.a), DN_OK);
    cr_expect_str_eq(log, "inference/i,training/i");
    cr_expect_null(f.m.train);
    cr_expect_eq(f.m.state_graph, f.m.infer);
    cr_expect_eq(f.m.lr, 0);
    unload(&f);
}

/* An explicit list: the defining pass first when not listed, plan-memory at
 * the end ignored. */
Test(pipeline, explicit_list)
{
    Fixture f;
    load(&f);
    char log[512] = "";
    DnCompileOptions o = {
        .passes = "fuse-conv,canonicalize,plan-memory", .after_pass = log_pass, .after_pass_arg = log};
    cr_assert_eq(dn_compile(&f.cx, f.g, &o, &f.m, &f.a), DN_OK);
    cr_expect_str_eq(log, "inference/i,fuse-conv/i,canonicalize/i,training/t,fuse-conv/t,canonicalize/t");
    unload(&f);
}

/* print_after writes to print_to: a pass's graphs, or plan-memory's plans
 * exactly as dn_plan_print prints them. */
Test(pipeline, print_after_to_a_stream)
{
    Fixture f;
    load(&f);
    char *text = NULL, *want = NULL;
    size_t n = 0, wn = 0;
    FILE *s = open_memstream(&text, &n);
    DnCompileOptions o = {.print_after = "plan-memory", .print_to = s};
    cr_assert_eq(dn_compile(&f.cx, f.g, &o, &f.m, &f.a), DN_OK);
    fclose(s);
    FILE *w = open_memstream(&want, &wn);
    fputs("// after plan-memory (inference graph)\n", w);
    dn_plan_print(f.m.infer, f.m.infer_plan, w);
    fputs("// after plan-memory (training graph)\n", w);
    dn_plan_print(f.m.train, f.m.train_plan, w);
    fclose(w);
    cr_expect_str_eq(text, want);
    free(text);
    free(want);
    unload(&f);

    load(&f);
    s = open_memstream(&text, &n);
    o = (DnCompileOptions){.print_after = "canonicalize", .print_to = s};
    cr_assert_eq(dn_compile(&f.cx, f.g, &o, &f.m, &f.a), DN_OK);
    fclose(s);
    cr_expect(strstr(text, "// after canonicalize (inference graph)\nfunc @m("), "%s", text);
    cr_expect(strstr(text, "// after canonicalize (training graph)\nfunc @m("), "%s", text);
    cr_expect_null(strstr(text, "plan @m"), "%s", text);
    free(text);
    unload(&f);
}
