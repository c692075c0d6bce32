/* test_driver.c -- the dnnc command line: every stage printable (the
 * memory plan through --print-after=plan-memory too), usage errors with
 * status 2, compile errors with status 1, a failed compile never destroys
 * the library or header it would have replaced, targets chosen by name,
 * and the IR text as input: for every model of examples/ and tests/golden/,
 * compiling its --emit=ir text gives the same optimized graphs as compiling
 * its source. */
#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend.h"
#include "passes/passes.h"
#include "testlib.h"

static char out[1 << 16];

/* Runs dnnc with 'args'; returns its exit status, output in 'out'. */
static int dnnc(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s", DNNC_BIN, args);
    return dn_test_run(cmd, out, sizeof out);
}

Test(driver, help_lists_every_pass_and_emit_kind)
{
    cr_assert_eq(dnnc("--help"), 0);
    for (int i = 0; i < dn_pass_count; i++)
        cr_expect(strstr(out, dn_pass_table[i].name), "--help does not mention pass '%s'", dn_pass_table[i].name);
    static const char *const kinds[] = {"ast", "ir", "ir-opt", "plan", "code", "llvm", "header"};
    for (int i = 0; i < 7; i++) cr_expect(strstr(out, kinds[i]), "--help does not mention --emit=%s", kinds[i]);
    cr_expect(strstr(out, "--target=NAME"), "%s", out);
    for (int i = 0; i < dn_backend_count; i++)
        cr_expect(strstr(out, dn_backend_table[i]->name), "--help does not list target '%s'",
                  dn_backend_table[i]->name);
}

/* --help-ops: a line per op of ops.def, starting with its name, with its
 * attributes and defaults as the schema gives them. */
Test(driver, help_ops_lists_every_op_with_its_defaults)
{
    cr_assert_eq(dnnc("--help-ops"), 0, "%s", out);
    for (int k = 0; k < DN_OP_COUNT; k++) {
        char line[64];
        snprintf(line, sizeof line, "\n%s ", dn_op_info[k].name);
        cr_expect(strstr(out, line), "--help-ops does not list op '%s'", dn_op_info[k].name);
    }
    const char *conv = strstr(out, "\nconv2d ");
    cr_assert_not_null(conv);
    const char *eol = strchr(conv + 1, '\n');
    const char *stride = strstr(conv, "stride:ints=1 ");
    cr_expect(stride && stride < eol, "conv2d's line lacks stride:ints=1: %.*s", (int)(eol - conv), conv);
    cr_expect(strstr(out, "kernel:ints stride:ints=kernel pad:ints=0"), "%s", out);
    cr_expect(strstr(out, "axis:int=-1"), "%s", out);
    cr_assert_eq(dnnc("--help"), 0);
    cr_expect(strstr(out, "--help-ops"), "--help does not mention --help-ops");
}

Test(driver, every_stage_prints)
{
    static const struct {
        const char *flags, *marker;
    } stages[] = {
        {"--emit=ast", "conv2d"},
        {"--emit=ir", "func @lenet"},
        {"--emit=ir-opt", "act = \"relu\""},            /* fuse-conv ran */
        {"--emit=ir-opt --graph=train", "adam_update"}, /* training ran */
        {"--emit=plan", "arena:"},
        {"--emit=llvm", "define"},
        {"--emit=code", "define"},
        {"--emit=code --target=cpu", "define"},
        {"--emit=header", "lenet_train_step"},
        {"--emit=ir-opt -fno-fuse-conv", "= relu "},
    };
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++) {
        char args[512];
        snprintf(args, sizeof args, "'%s' %s", dn_test_src("examples/lenet.dnn"), stages[i].flags);
        cr_expect_eq(dnnc(args), 0, "%s: %s", stages[i].flags, out);
        cr_expect(strstr(out, stages[i].marker), "%s: no '%s' in the output", stages[i].flags, stages[i].marker);
    }
}

Test(driver, print_after_writes_the_graph_to_stderr)
{
    char args[512];
    snprintf(args, sizeof args, "'%s' --emit=header --print-after=canonicalize", dn_test_src("examples/lenet.dnn"));
    cr_assert_eq(dnnc(args), 0, "%s", out);
    cr_expect(strstr(out, "// after canonicalize (inference graph)"), "%s", out);
    cr_expect(strstr(out, "// after canonicalize (training graph)"), "%s", out);
}

Test(driver, usage_errors_exit_2)
{
    static const char *const bad[] = {"",
                                      "--emit=bogus x.dnn",
                                      "-fno-nosuchpass x.dnn",
                                      "-fno-training x.dnn",
                                      "-fno-inference x.dnn",
                                      "-fno-plan-memory x.dnn",
                                      "--print-after=nosuchpass x.dnn",
                                      "--target=nope x.dnn",
                                      "--frobnicate x.dnn",
                                      "a.dnn b.dnn",
                                      "-o"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(dnnc(bad[i]), 2, "'dnnc %s' should be a usage error: %s", bad[i], out);
        cr_expect(strstr(out, "dnnc: "), "'dnnc %s': %s", bad[i], out);
    }
}

Test(driver, missing_input_exits_1_naming_it)
{
    cr_expect_eq(dnnc("/nonexistent/model.dnn"), 1);
    cr_expect(strstr(out, "cannot read '/nonexistent/model.dnn'"), "%s", out);
}

/* A compile that fails (here: a type error) leaves an existing .so and .h
 * exactly as they were, and leaves no temporary files next to them. */
Test(driver, failed_compile_keeps_previous_outputs)
{
    char dir[64];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-driver");
    char so[128], h[128], bad[128], args[512];
    snprintf(so, sizeof so, "%s/m.so", dir);
    snprintf(h, sizeof h, "%s/m.h", dir);
    snprintf(bad, sizeof bad, "%s/bad.dnn", dir);
    FILE *f = fopen(so, "w");
    fputs("old library", f);
    fclose(f);
    f = fopen(h, "w");
    fputs("old header", f);
    fclose(f);
    f = fopen(bad, "w");
    fputs("model m(x: f32[N, 784]) -> (y: f32[N, 6, 24, 24]) {\n  y = conv2d(x, 6, kernel=5)\n}\n", f);
    fclose(f);
    snprintf(args, sizeof args, "'%s' -o '%s'", bad, so);
    cr_expect_eq(dnnc(args), 1, "%s", out);
    cr_expect(strstr(out, "bad.dnn:2:7: error: conv2d expects a 4-d input, got f32[N, 784]"), "%s", out);
    char buf[64] = {0};
    f = fopen(so, "r");
    cr_assert(fgets(buf, sizeof buf, f));
    fclose(f);
    cr_expect_str_eq(buf, "old library");
    f = fopen(h, "r");
    cr_assert(fgets(buf, sizeof buf, f));
    fclose(f);
    cr_expect_str_eq(buf, "old header");
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls -A '%s'", dir);
    dn_test_run(cmd, out, sizeof out);
    cr_expect_str_eq(out, "bad.dnn\nm.h\nm.so\n", "leftovers in %s: %s", dir, out);
    dn_test_rmtree(dir);
}

/* The memory plan runs elementwise ops in place: tanh and sigmoid write over
 * the dying dense result, so all three share one arena block. */
Test(driver, plan_reuses_dying_operands_in_place)
{
    char dir[64], path[128], args[256];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-plan");
    snprintf(path, sizeof path, "%s/p.dnn", dir);
    FILE *f = fopen(path, "w");
    fputs("model p(x: f32[N, 4]) -> (y: f32[N, 2]) {\n  y = x |> dense(8) |> tanh |> sigmoid |> dense(2)\n}\n", f);
    fclose(f);
    snprintf(args, sizeof args, "'%s' --emit=plan", path);
    cr_assert_eq(dnnc(args), 0, "%s", out);
    char where[3][64] = {{0}};
    static const char *const ops[] = {"dense ", "tanh ", "sigmoid "};
    for (int i = 0; i < 3; i++) {
        const char *line = strstr(out, ops[i]);
        cr_assert(line, "no %s in the plan:\n%s", ops[i], out);
        const char *at = strstr(line, "arena");
        cr_assert(at && at < strchr(line, '\n'), "%s is not in the arena:\n%s", ops[i], out);
        snprintf(where[i], sizeof where[i], "%.*s", (int)(strchr(at, '\n') - at), at);
    }
    cr_expect_str_eq(where[1], where[0], "tanh not in place:\n%s", out);
    cr_expect_str_eq(where[2], where[1], "sigmoid not in place:\n%s", out);
    dn_test_rmtree(dir);
}

/* ---- the memory plan as a stage --------------------------------------------- */

/* Reads 'path' into a malloc'd string (asserts it can). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

/* --print-after=plan-memory writes each graph's plan to stderr exactly as
 * --emit=plan prints it. */
Test(driver, print_after_plan_memory_prints_each_plan)
{
    char dir[64], plan[128], args[512];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-stage");
    const char *lenet = dn_test_src("examples/lenet.dnn");
    static const char *const graphs[] = {"infer", "train"};
    static const char *const headings[] = {"// after plan-memory (inference graph)\n",
                                           "// after plan-memory (training graph)\n"};
    for (int i = 0; i < 2; i++) {
        snprintf(plan, sizeof plan, "%s/%s.plan", dir, graphs[i]);
        snprintf(args, sizeof args, "'%s' --emit=plan --graph=%s -o '%s'", lenet, graphs[i], plan);
        cr_assert_eq(dnnc(args), 0, "%s", out);
        snprintf(args, sizeof args, "'%s' --emit=header -o '%s/m.h' --print-after=plan-memory", lenet, dir);
        cr_assert_eq(dnnc(args), 0, "%s", out);
        char *want = slurp(plan), *at = strstr(out, headings[i]);
        cr_expect(at && !strncmp(at + strlen(headings[i]), want, strlen(want)),
                  "no '%s' followed by the --emit=plan text in:\n%s", headings[i], out);
        cr_expect_null(strstr(out, "// after canonicalize"), "printed more than the plan:\n%s", out);
        free(want);
    }
    snprintf(args, sizeof args, "'%s' --emit=header -o '%s/m.h' --print-after=all", lenet, dir);
    cr_assert_eq(dnnc(args), 0, "%s", out);
    cr_expect(strstr(out, "// after fuse-conv (training graph)") && strstr(out, headings[1]), "%s", out);
    dn_test_rmtree(dir);
}

/* plan-memory may end --passes (it runs last anyway), nowhere else. */
Test(driver, passes_list_may_end_with_plan_memory)
{
    char args[512];
    const char *mlp = dn_test_src("examples/mlp.dnn");
    snprintf(args, sizeof args, "'%s' --emit=plan --passes=canonicalize,plan-memory", mlp);
    cr_expect_eq(dnnc(args), 0, "%s", out);
    cr_expect(strstr(out, "arena:"), "%s", out);
    snprintf(args, sizeof args, "'%s' --emit=plan --passes=plan-memory,canonicalize", mlp);
    cr_expect_eq(dnnc(args), 1, "%s", out);
    cr_expect(strstr(out, "error: 'plan-memory' can only end --passes"), "%s", out);
}

/* ---- targets ------------------------------------------------------------------ */

Test(driver, target_by_name)
{
    char dir[64], so[128], a[128], b[128], args[512];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-target");
    const char *mlp = dn_test_src("examples/mlp.dnn");
    snprintf(so, sizeof so, "%s/m.so", dir);
    snprintf(args, sizeof args, "'%s' --target=cpu -o '%s'", mlp, so);
    cr_expect_eq(dnnc(args), 0, "%s", out);
    cr_expect_eq(access(so, F_OK), 0, "--target=cpu wrote no library");

    snprintf(args, sizeof args, "'%s' --target=nope", mlp);
    cr_expect_eq(dnnc(args), 2, "%s", out);
    cr_expect(strstr(out, "dnnc: unknown target 'nope' (known: cpu"), "%s", out);

    snprintf(a, sizeof a, "%s/code.ll", dir);
    snprintf(b, sizeof b, "%s/llvm.ll", dir);
    snprintf(args, sizeof args, "'%s' --emit=code -o '%s' && '%s' '%s' --emit=llvm -o '%s'", mlp, a, DNNC_BIN, mlp, b);
    cr_assert_eq(dnnc(args), 0, "%s", out);
    char *code = slurp(a), *llvm = slurp(b);
    cr_expect(strstr(code, "define"), "--emit=code printed no LLVM IR");
    cr_expect_str_eq(code, llvm, "--emit=code and --emit=llvm differ");
    free(code);
    free(llvm);
    dn_test_rmtree(dir);
}

/* ---- the IR text as input ------------------------------------------------------ */

/* Writes  dnnc 'input' --emit=ir-opt --graph='graph'  to 'path'; returns the status. */
static int optimized(const char *input, const char *graph, const char *path)
{
    char args[1024];
    snprintf(args, sizeof args, "'%s' --emit=ir-opt --graph=%s -o '%s'", input, graph, path);
    return dnnc(args);
}

/* MODEL.dnn --emit=ir > MODEL.dnir; then MODEL.dnir --emit=ir-opt equals MODEL.dnn --emit=ir-opt,
 * for the inference graph and, where the model trains, the training graph.
 * Returns the number of graphs compared. */
static int check_round_trip(const char *dnn, const char *dir)
{
    char ir[256], a[256], b[256], args[1024];
    snprintf(ir, sizeof ir, "%s/x.dnir", dir);
    snprintf(args, sizeof args, "'%s' --emit=ir -o '%s'", dnn, ir);
    cr_assert_eq(dnnc(args), 0, "%s --emit=ir: %s", dnn, out);
    static const char *const graphs[] = {"infer", "train"};
    int ncompared = 0;
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/%s.dnn.ir", dir, graphs[i]);
        snprintf(b, sizeof b, "%s/%s.dnir.ir", dir, graphs[i]);
        int ra = optimized(dnn, graphs[i], a);
        if (ra != 0 && i == 1 && strstr(out, "has no training graph")) continue; /* does not train */
        cr_expect_eq(ra, 0, "%s --graph=%s: %s", dnn, graphs[i], out);
        cr_expect_eq(optimized(ir, graphs[i], b), 0, "%s (as .dnir) --graph=%s: %s", dnn, graphs[i], out);
        if (ra != 0) continue;
        char *from_dnn = slurp(a), *from_ir = slurp(b);
        cr_expect_str_eq(from_ir, from_dnn, "%s --graph=%s: the .dnir compiles to other IR", dnn, graphs[i]);
        free(from_dnn);
        free(from_ir);
        ncompared++;
    }
    return ncompared;
}

Test(driver, dnir_input_gives_the_same_optimized_ir)
{
    static const char *const patterns[] = {"examples/*.dnn", "tests/golden/*.dnn"};
    char dir[64];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-dnir");
    int nmodels = 0, ngraphs = 0;
    for (int p = 0; p < 2; p++) {
        glob_t gl;
        cr_assert_eq(glob(dn_test_src(patterns[p]), 0, NULL, &gl), 0, "no %s", patterns[p]);
        for (size_t i = 0; i < gl.gl_pathc; i++, nmodels++) ngraphs += check_round_trip(gl.gl_pathv[i], dir);
        globfree(&gl);
    }
    cr_expect_geq(nmodels, 10, "only %d models", nmodels);
    cr_expect_gt(ngraphs, nmodels, "no training graph compared (%d graphs)", ngraphs);
    cr_log_info("%d models, %d graphs compared", nmodels, ngraphs);
    dn_test_rmtree(dir);
}
