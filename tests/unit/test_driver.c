/* test_driver.c -- the dnnc command line: every stage printable, usage
 * errors with status 2, compile errors with status 1, and a failed compile
 * never destroys the library or header it would have replaced. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    static const char *const kinds[] = {"ast", "ir", "ir-opt", "plan", "llvm", "header"};
    for (int i = 0; i < 6; i++) cr_expect(strstr(out, kinds[i]), "--help does not mention --emit=%s", kinds[i]);
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
    static const char *const bad[] = {
        "",  "--emit=bogus x.dnn", "-fno-nosuchpass x.dnn", "-fno-training x.dnn", "--frobnicate x.dnn", "a.dnn b.dnn",
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
