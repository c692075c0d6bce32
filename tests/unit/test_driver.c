/* test_driver.c -- the dnnc command line: every stage printable (the
 * memory plan through --print-after=plan-memory too), usage errors with
 * status 2, compile errors with status 1, a failed compile never destroys
 * the library or header it would have replaced, targets chosen by name,
 * and the IR text as input: for every model of examples/ and tests/golden/,
 * compiling its --emit=ir text gives the same optimized graphs as compiling
 * its source.  Nothing hangs or loses data: a FIFO input is refused, an
 * output that is the input is refused, write errors (a full disk, a file
 * size limit, a failing linker) exit 1 and leave the old outputs whole, and
 * temporaries are removed, a killed run's by the next run. */
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

static char out[1 << 18];

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
        char *want = dn_test_slurp(plan, NULL), *at = strstr(out, headings[i]);
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
    char *code = dn_test_slurp(a, NULL), *llvm = dn_test_slurp(b, NULL);
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
static int check_round_trip(const char *dnn, const char *model, const char *dir)
{
    char ir[256], a[256], b[256], args[1024], dnn_arg[600];
    /* a file with several models: this one (the .dnir holds only it) */
    snprintf(dnn_arg, sizeof dnn_arg, model ? "%s' --model '%s" : "%s", dnn, model);
    dnn = dnn_arg;
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
        char *from_dnn = dn_test_slurp(a, NULL), *from_ir = dn_test_slurp(b, NULL);
        cr_expect_str_eq(from_ir, from_dnn, "%s --graph=%s: the .dnir compiles to other IR", dnn, graphs[i]);
        free(from_dnn);
        free(from_ir);
        ncompared++;
    }
    return ncompared;
}

/* The names of the models 'path' defines (lines "model NAME(...").  */
static int model_names(const char *path, char names[][64], int max)
{
    char *src = dn_test_slurp(path, NULL);
    int n = 0;
    for (char *p = src; p && *p && n < max; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (sscanf(p, "model %63[A-Za-z0-9_](", names[n]) == 1) n++;
    free(src);
    cr_assert_gt(n, 0, "%s defines no model", path);
    return n;
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
        for (size_t i = 0; i < gl.gl_pathc; i++) {
            char names[8][64];
            int nnames = model_names(gl.gl_pathv[i], names, 8);
            for (int m = 0; m < nnames; m++, nmodels++)
                ngraphs += check_round_trip(gl.gl_pathv[i], nnames > 1 ? names[m] : NULL, dir);
        }
        globfree(&gl);
    }
    cr_expect_geq(nmodels, 10, "only %d models", nmodels);
    cr_expect_gt(ngraphs, nmodels, "no training graph compared (%d graphs)", ngraphs);
    cr_log_info("%d models, %d graphs compared", nmodels, ngraphs);
    dn_test_rmtree(dir);
}

/* ---- inputs and outputs that must not hang or lose data ------------------------ */

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

/* What 'ls -A DIR' prints, one name a line. */
static const char *listing(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "ls -A '%s'", dir);
    dn_test_run(cmd, out, sizeof out);
    return out;
}

/* A FIFO or a folder as the input is refused at once (a FIFO used to block
 * the open forever), and so is an -o FIFO that no process reads. */
Test(driver, input_that_is_not_a_regular_file_is_refused)
{
    char dir[64], fifo[128], args[512], want[256];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-fifo");
    snprintf(fifo, sizeof fifo, "%s/f.dnn", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    snprintf(args, sizeof args, "timeout 10 '%s' '%s'", DNNC_BIN, fifo);
    cr_expect_eq(dn_test_run(args, out, sizeof out), 1, "a FIFO input (124: it hung): %s", out);
    snprintf(want, sizeof want, "dnnc: cannot read '%s': not a regular file", fifo);
    cr_expect(strstr(out, want), "%s", out);

    snprintf(args, sizeof args, "'%s'", dir);
    cr_expect_eq(dnnc(args), 1, "%s", out);
    snprintf(want, sizeof want, "dnnc: cannot read '%s': not a regular file", dir);
    cr_expect(strstr(out, want), "%s", out);

    snprintf(args, sizeof args, "timeout 10 '%s' '%s' --emit=ir -o '%s'", DNNC_BIN, dn_test_src("examples/mlp.dnn"),
             fifo);
    cr_expect_eq(dn_test_run(args, out, sizeof out), 1, "-o FIFO without a reader (124: it hung): %s", out);
    snprintf(want, sizeof want, "cannot write '%s': No such device or address (no process has it open", fifo);
    cr_expect(strstr(out, want), "%s", out);
    dn_test_rmtree(dir);
}

/* No output may be the input: -o naming it, under another spelling, through
 * a symbolic or a hard link, or as the header of the library (-o <x>.so
 * writes <x>.h; an input <m>.h has the default output <m>.so, whose header
 * is the input).  Each is refused with status 1 before anything is written. */
Test(driver, output_that_is_the_input_is_refused)
{
    char dir[64], m[128], path[256], args[1024], want[512];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-self");
    char *source = dn_test_slurp(dn_test_src("examples/mlp.dnn"), NULL);
    snprintf(m, sizeof m, "%s/m.dnn", dir);
    put(m, source);
    snprintf(path, sizeof path, "%s/link.ll", dir);
    cr_assert_eq(symlink("m.dnn", path), 0);
    snprintf(path, sizeof path, "%s/x.h", dir);
    cr_assert_eq(link(m, path), 0);
    snprintf(args, sizeof args, "'%s' --emit=ir -o '%s/m.dnir'", m, dir);
    cr_assert_eq(dnnc(args), 0, "%s", out);
    snprintf(path, sizeof path, "%s/h", dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/h/m.h", dir);
    put(path, source);

    static const struct {
        const char *input, *flags, *culprit;
    } cases[] = {
        {"m.dnn", "-o %s/m.dnn", "m.dnn"},
        {"m.dnn", "--emit=ir -o %s/m.dnn", "m.dnn"},
        {"m.dnn", "--emit=ast -o %s/./h/../m.dnn", "m.dnn"},
        {"m.dnn", "--emit=ir-opt -o %s/link.ll", "link.ll"},
        {"m.dnn", "-o %s/x.so", "x.h"},
        {"m.dnir", "--emit=ir -o %s/m.dnir", "m.dnir"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char flags[300];
        snprintf(flags, sizeof flags, cases[i].flags, dir);
        snprintf(args, sizeof args, "'%s/%s' %s", dir, cases[i].input, flags);
        cr_expect_eq(dnnc(args), 1, "dnnc %s: %s", args, out);
        snprintf(want, sizeof want, "/%s' is the input file '%s/%s': refusing to overwrite it", cases[i].culprit, dir,
                 cases[i].input);
        cr_expect(strstr(out, want), "dnnc %s: %s", args, out);
    }
    snprintf(args, sizeof args, "cd '%s/h' && '%s' m.h", dir, DNNC_BIN);
    cr_expect_eq(dn_test_run(args, out, sizeof out), 1, "%s", out);
    cr_expect(strstr(out, "dnnc: output 'm.h' is the input file 'm.h'"), "%s", out);

    char *after = dn_test_slurp(m, NULL);
    cr_expect_str_eq(after, source, "the input was changed");
    free(after);
    snprintf(path, sizeof path, "%s/h/m.h", dir);
    after = dn_test_slurp(path, NULL);
    cr_expect_str_eq(after, source, "the input m.h was changed");
    free(after);
    cr_expect_str_eq(listing(dir), "h\nlink.ll\nm.dnir\nm.dnn\nx.h\n", "files written in %s", dir);
    snprintf(path, sizeof path, "%s/h", dir);
    cr_expect_str_eq(listing(path), "m.h\n");
    free(source);
    dn_test_rmtree(dir);
}

/* 1 when 'path' is a character device (asserted around the cases that
 * reach /dev/null and /dev/full through links of the test's folder: -o
 * never names them, so that a broken dnnc run as root cannot replace them). */
static int is_chardev(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISCHR(st.st_mode);
}

/* Every --emit kind checks its writes: to /dev/full (through a link; a
 * device is written in place, not renamed over) and to a full standard
 * output they fail with status 1; a file that cannot grow (ulimit -f)
 * keeps its previous contents and gets no temporary beside it; a link to
 * a file is followed, the link kept. */
Test(driver, emit_write_errors_exit_1_and_keep_the_old_file)
{
    const char *lenet = dn_test_src("examples/lenet.dnn");
    char dir[64], ll[128], full[128], null[128], args[1024], want[256];
    static const char *const kinds[] = {"ast", "ir", "ir-opt", "plan", "code", "header"};
    dn_test_tmpdir(dir, sizeof dir, "dnnc-full");
    snprintf(full, sizeof full, "%s/full", dir);
    snprintf(null, sizeof null, "%s/null", dir);
    cr_assert(is_chardev("/dev/null"));
    cr_assert_eq(symlink("/dev/full", full), 0);
    cr_assert_eq(symlink("/dev/null", null), 0);
    if (is_chardev("/dev/full") && access("/dev/full", W_OK) == 0)
        for (int i = 0; i < 6; i++) {
            snprintf(args, sizeof args, "'%s' --emit=%s -o '%s'", lenet, kinds[i], full);
            cr_expect_eq(dnnc(args), 1, "--emit=%s to /dev/full: %s", kinds[i], out);
            snprintf(want, sizeof want, "dnnc: error: cannot write '%s': No space left on device", full);
            cr_expect(strstr(out, want), "--emit=%s: %s", kinds[i], out);
            snprintf(args, sizeof args, "'%s' '%s' --emit=%s >/dev/full", DNNC_BIN, lenet, kinds[i]);
            cr_expect_eq(dn_test_run(args, out, sizeof out), 1, "--emit=%s >/dev/full: %s", kinds[i], out);
            cr_expect(strstr(out, "cannot write the standard output: No space left on device"), "%s", out);
        }
    else
        cr_log_warn("no writable /dev/full: its cases skipped");
    snprintf(args, sizeof args, "'%s' --emit=ir -o '%s'", lenet, null);
    cr_expect_eq(dnnc(args), 0, "%s", out);
    cr_assert(is_chardev("/dev/null") && is_chardev("/dev/full"), "a device was replaced");
    cr_expect_str_eq(listing(dir), "full\nnull\n", "leftovers in %s", dir);
    unlink(full);
    unlink(null);

    snprintf(ll, sizeof ll, "%s/x.ll", dir);
    put(ll, "old");
    snprintf(args, sizeof args, "ulimit -f 1; '%s' '%s' --emit=code -o '%s'", DNNC_BIN, lenet, ll);
    cr_expect_eq(dn_test_run(args, out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "dnnc: error: cannot write '%s': File too large", ll);
    cr_expect(strstr(out, want), "%s", out);
    char *text = dn_test_slurp(ll, NULL);
    cr_expect_str_eq(text, "old", "a failed --emit damaged the previous file");
    free(text);
    cr_expect_str_eq(listing(dir), "x.ll\n", "leftovers in %s", dir);

    snprintf(args, sizeof args, "%s/link.ll", dir);
    cr_assert_eq(symlink("x.ll", args), 0);
    snprintf(args, sizeof args, "'%s' --emit=ir -o '%s/link.ll'", lenet, dir);
    cr_expect_eq(dnnc(args), 0, "%s", out);
    text = dn_test_slurp(ll, NULL);
    cr_expect(!strncmp(text, "func @lenet", 11), "%s", text);
    free(text);
    struct stat st;
    snprintf(args, sizeof args, "%s/link.ll", dir);
    cr_expect(lstat(args, &st) == 0 && S_ISLNK(st.st_mode), "the link was replaced by the file");
    cr_expect_str_eq(listing(dir), "link.ll\nx.ll\n", "leftovers in %s", dir);
    dn_test_rmtree(dir);
}

/* Writes "old library" to m.so in 'dir' and "old header" to its header. */
static void old_outputs(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/m.so", dir);
    put(path, "old library");
    snprintf(path, sizeof path, "%s/m.h", dir);
    put(path, "old header");
}

static void expect_old_outputs(const char *dir, const char *why)
{
    char path[128];
    snprintf(path, sizeof path, "%s/m.so", dir);
    char *text = dn_test_slurp(path, NULL);
    cr_expect_str_eq(text, "old library", "%s: the library was replaced", why);
    free(text);
    snprintf(path, sizeof path, "%s/m.h", dir);
    text = dn_test_slurp(path, NULL);
    cr_expect_str_eq(text, "old header", "%s: the header was replaced", why);
    free(text);
    cr_expect_str_eq(listing(dir), "m.h\nm.so\ntmp\n", "%s: leftovers in %s", why, dir);
    snprintf(path, sizeof path, "%s/tmp", dir);
    cr_expect_str_eq(listing(path), "", "%s: leftovers in the temporary folder", why);
}

/* A library build that cannot write the header (ulimit -f 1), the object
 * (ulimit -f 16: the header fits) or the library (the linker writes part
 * of it, then fails) leaves the old library and header as they were and
 * no temporary, neither beside them nor in $TMPDIR; a library or header
 * path that is a device or a FIFO is refused (renaming over it would
 * replace it). */
Test(driver, library_write_errors_keep_the_old_library)
{
    const char *mlp = dn_test_src("examples/mlp.dnn");
    char dir[64], args[1024], want[256], cc[128];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-libfull");
    snprintf(args, sizeof args, "%s/tmp", dir);
    cr_assert_eq(mkdir(args, 0700), 0);
    old_outputs(dir);

    snprintf(args, sizeof args, "ulimit -f 1; TMPDIR='%s/tmp' '%s' '%s' -o '%s/m.so'", dir, DNNC_BIN, mlp, dir);
    cr_expect_eq(dn_test_run(args, out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "dnnc: error: cannot write '%s/m.h': File too large", dir);
    cr_expect(strstr(out, want), "%s", out);
    expect_old_outputs(dir, "header too large");

    snprintf(args, sizeof args, "ulimit -f 16; TMPDIR='%s/tmp' '%s' '%s' -o '%s/m.so'", dir, DNNC_BIN, mlp, dir);
    cr_expect_eq(dn_test_run(args, out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "dnnc: error: cannot write '%s/tmp/dnnc-tmp.", dir);
    cr_expect(strstr(out, want) && strstr(out, ".o': File too large"), "%s", out);
    expect_old_outputs(dir, "object too large");

    /* A "compiler" that writes part of a library to its -o and fails. */
    char bin[64];
    dn_test_tmpdir(bin, sizeof bin, "dnnc-cc");
    snprintf(cc, sizeof cc, "%s/cc", bin);
    put(cc, "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = -o ] && echo partial >\"$2\"; shift; done; exit 1\n");
    cr_assert_eq(chmod(cc, 0700), 0);
    snprintf(args, sizeof args, "DNNC_CC='%s' TMPDIR='%s/tmp' '%s' '%s' -o '%s/m.so'", cc, dir, DNNC_BIN, mlp, dir);
    cr_expect_eq(dn_test_run(args, out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "linking '%s/m.so': '%s' exited with status 1", dir, cc);
    cr_expect(strstr(out, want), "%s", out);
    dn_test_rmtree(bin);
    expect_old_outputs(dir, "link failed");

    /* Non-regular destinations: FIFOs of the test's folder stand for
     * devices, which a broken dnnc run as root would replace. */
    snprintf(args, sizeof args, "%s/n.h", dir);
    cr_assert_eq(mkfifo(args, 0600), 0);
    snprintf(args, sizeof args, "timeout 10 '%s' '%s' -o '%s/n.so'", DNNC_BIN, mlp, dir);
    cr_expect_eq(dn_test_run(args, out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "dnnc: error: cannot write '%s/n.h': not a regular file", dir);
    cr_expect(strstr(out, want), "%s", out);
    snprintf(args, sizeof args, "%s/n.so", dir);
    cr_expect_neq(access(args, F_OK), 0, "n.so was written although n.h cannot be");
    snprintf(args, sizeof args, "%s/p.so", dir);
    cr_assert_eq(mkfifo(args, 0600), 0);
    snprintf(args, sizeof args, "timeout 10 '%s' '%s' -o '%s/p.so'", DNNC_BIN, mlp, dir);
    cr_expect_eq(dn_test_run(args, out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "dnnc: error: cannot write '%s/p.so': not a regular file", dir);
    cr_expect(strstr(out, want), "%s", out);
    struct stat st;
    snprintf(args, sizeof args, "%s/p.so", dir);
    cr_expect(stat(args, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO was replaced");
    snprintf(args, sizeof args, "%s/n.h", dir);
    cr_expect(stat(args, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO was replaced");
    dn_test_rmtree(dir);
}

/* Temporaries are named after their output and the PID writing them, so a
 * later run removes those a killed run left (PID 999999999 is above any
 * pid_max) and keeps those of running processes (this test's PID) and
 * files that merely look alike. */
Test(driver, stale_temporaries_are_removed)
{
    const char *mlp = dn_test_src("examples/mlp.dnn");
    char dir[64], path[256], args[1024];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-stale");
    snprintf(path, sizeof path, "%s/tmp", dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    static const char *const stale[] = {"m.so.dnnc-tmp.999999999", "m.h.dnnc-tmp.999999999", "x.ll.dnnc-tmp.999999999",
                                        "tmp/dnnc-tmp.999999999.abcdef.o"};
    char live[2][64];
    snprintf(live[0], sizeof live[0], "m.so.dnnc-tmp.%d", (int)getpid());
    snprintf(live[1], sizeof live[1], "tmp/dnnc-tmp.%d.abcdef.o", (int)getpid());
    static const char *const alike[] = {"m.so.tmp.999999999", "m.so.dnnc-tmp.999999999x", "tmp/other.o"};
    const char *names[9];
    for (int i = 0; i < 4; i++) names[i] = stale[i];
    for (int i = 0; i < 2; i++) names[4 + i] = live[i];
    for (int i = 0; i < 3; i++) names[6 + i] = alike[i];
    for (int i = 0; i < 9; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        put(path, "left over");
    }

    snprintf(args, sizeof args, "TMPDIR='%s/tmp' '%s' '%s' -o '%s/m.so' && '%s' '%s' --emit=ir -o '%s/x.ll'", dir,
             DNNC_BIN, mlp, dir, DNNC_BIN, mlp, dir);
    cr_assert_eq(dn_test_run(args, out, sizeof out), 0, "%s", out);
    for (int i = 0; i < 9; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (i < 4)
            cr_expect_neq(access(path, F_OK), 0, "stale %s was kept", names[i]);
        else
            cr_expect_eq(access(path, F_OK), 0, "%s was removed", names[i]);
    }
    dn_test_rmtree(dir);
}
