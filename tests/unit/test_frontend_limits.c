/* test_frontend_limits.c -- the frontend on large generated inputs: none
 * crashes, hangs or takes memory out of proportion (docs/language.md,
 * "Limits").
 *
 *  - long chains: pipes of 1,200 and 5,000 stages (one line, or a stage a
 *    line), 21,000 and 100,000 '+ x' terms, compile-time products of 30,000
 *    factors, ?: and else-if chains of 50,000, through dn_parse/dn_lower in
 *    this process and through the real dnnc (DNNC_BIN) under the default
 *    stack and under a 1 MB one, for --emit=ir and --emit=ast;
 *  - the budgets stop at the right place: the op budget at the term that
 *    passes it, integer overflow at the operator in a long product;
 *  - nesting through inlined blocks ends in a diagnostic, not a crash;
 *  - NUL bytes in the text given to dn_parse_n or dn_input_check_text are
 *    errors at their line and column; a source over DN_MAX_SOURCE_BYTES is
 *    refused;
 *  - a few-MB source of simple statements (and one of distinct names) runs
 *    through dnnc in bounded time and memory (generous bounds: the
 *    quadratic versions took minutes or gigabytes).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frontend/ast.h"
#include "testlib.h"

static DnCtx cx;
static DnArena ar;

static void setup(void)
{
    dn_ctx_init(&cx);
    memset(&ar, 0, sizeof ar);
}

static void teardown(void)
{
    dn_arena_free(&ar);
    dn_ctx_free(&cx);
}

TestSuite(limits, .init = setup, .fini = teardown, .timeout = 300);

/* ---- generated sources ---------------------------------------------------------- */

typedef struct Buf {
    char *s;
    size_t len, cap;
} Buf;

static void put(Buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = 2 * (b->len + n + 1);
        b->s = realloc(b->s, b->cap);
        cr_assert_not_null(b->s);
    }
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

static void put_n(Buf *b, const char *s, int n)
{
    for (int i = 0; i < n; i++) put(b, s);
}

static const char *head = "model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n";

/* y = x |> relu |> ... ('n' stages), on one line or a stage a line */
static char *pipe_source(int n, bool per_line)
{
    Buf b = {0};
    put(&b, head);
    put(&b, "  y = x");
    put_n(&b, per_line ? "\n    |> relu" : " |> relu", n);
    put(&b, "\n}\n");
    return b.s;
}

/* y = x + x + ... ('n' terms after the first) */
static char *sum_source(int n)
{
    Buf b = {0};
    put(&b, head);
    put(&b, "  y = x");
    put_n(&b, " + x", n);
    put(&b, "\n}\n");
    return b.s;
}

/* k = F * F * ... (1 + 'n' factors); y = x * k */
static char *product_source(const char *factor, int n)
{
    Buf b = {0};
    put(&b, head);
    put(&b, "  k = ");
    put(&b, factor);
    for (int i = 0; i < n; i++) {
        put(&b, " * ");
        put(&b, factor);
    }
    put(&b, "\n  y = x * k\n}\n");
    return b.s;
}

/* k = false ? 1 : false ? 1 : ... : 2 ('n' conditions) */
static char *ternary_source(int n)
{
    Buf b = {0};
    put(&b, head);
    put(&b, "  k = ");
    put_n(&b, "false ? 1 : ", n);
    put(&b, "2\n  y = x * k\n}\n");
    return b.s;
}

/* if false { } else if false { } ... else { y = x |> relu } ('n' else-ifs) */
static char *else_if_source(int n)
{
    Buf b = {0};
    put(&b, head);
    put(&b, "  y = x\n  if false { y = x }");
    put_n(&b, " else if false { y = x }", n);
    put(&b, " else { y = x |> relu }\n}\n");
    return b.s;
}

/* 'nblocks' blocks, each returning x + (x + ( ... the next block ... )) 'depth' deep */
static char *nested_blocks_source(int nblocks, int depth)
{
    Buf b = {0};
    char line[64];
    for (int k = 0; k < nblocks; k++) {
        snprintf(line, sizeof line, "block b%d(x) {\n  return ", k);
        put(&b, line);
        put_n(&b, "x + (", depth);
        snprintf(line, sizeof line, k + 1 < nblocks ? "b%d(x)" : "x", k + 1);
        put(&b, line);
        put_n(&b, ")", depth);
        put(&b, "\n}\n");
    }
    put(&b, head);
    put(&b, "  y = b0(x)\n}\n");
    return b.s;
}

/* ---- running the frontend here and dnnc ------------------------------------------ */

/* dn_parse + dn_lower of 'src' in this process; NULL after errors. */
static DnGraph *lower(const char *src)
{
    DnAst *ast = dn_parse(&cx, "t.dnn", src, &ar);
    return ast ? dn_lower(&cx, ast, NULL) : NULL;
}

/* The first diagnostic, which must exist. */
static const DnDiag *first_error(void)
{
    cr_assert_not_null(cx.diags, "no diagnostic");
    return cx.diags;
}

static char dir[256];
static char out[1 << 16];

/* Writes 'src' to a file in 'dir' and runs dnnc FLAGS on it after
 * ulimit -s STACK_KB (stack_kb 0: as inherited), stdout to another file
 * there (out_size); returns the exit status (-1 on a signal), stderr in
 * 'out'. */
static int dnnc(const char *src, const char *flags, int stack_kb)
{
    if (!dir[0]) dn_test_tmpdir(dir, sizeof dir, "dnnc-limits");
    char path[300], cmd[1024];
    snprintf(path, sizeof path, "%s/t.dnn", dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs(src, f);
    fclose(f);
    char ulimit[64] = "";
    if (stack_kb) snprintf(ulimit, sizeof ulimit, "ulimit -s %d && ", stack_kb);
    snprintf(cmd, sizeof cmd, "cd '%s' && %sexec '%s' %s t.dnn 2>&1 >out.txt", dir, ulimit, DNNC_BIN, flags);
    return dn_test_run(cmd, out, sizeof out);
}

static long out_size(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void cleanup(void)
{
    if (dir[0]) dn_test_rmtree(dir);
    dir[0] = 0;
}

/* dnnc on 'src' succeeds with --emit=ir and --emit=ast, under the default
 * stack and under 1 MB. */
static void expect_dnnc_ok(const char *src)
{
    static const int stacks[] = {0, 1024};
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(dnnc(src, "--emit=ir", stacks[i]), 0, "--emit=ir, stack %d KB: %.500s", stacks[i], out);
        cr_expect_eq(dnnc(src, "--emit=ast", stacks[i]), 0, "--emit=ast, stack %d KB: %.500s", stacks[i], out);
    }
}

/* dnnc on 'src' exits with status 1 and prints 'want' (<file>:LINE:COL: error: ...). */
static void expect_dnnc_error(const char *src, const char *want, int stack_kb)
{
    int rc = dnnc(src, "--emit=ir", stack_kb);
    cr_expect_eq(rc, 1, "exit status %d, stack %d KB: %.500s", rc, stack_kb, out);
    cr_expect(strstr(out, want), "missing '%s' in: %.500s", want, out);
}

/* ---- long chains ---------------------------------------------------------------- */

Test(limits, long_pipes_compile, .fini = cleanup)
{
    static const int lens[] = {1200, 1500, 5000};
    for (int i = 0; i < 3; i++)
        for (int per_line = 0; per_line < 2; per_line++) {
            char *src = pipe_source(lens[i], per_line);
            DnGraph *g = lower(src);
            cr_assert_not_null(g, "%d stages: %s", lens[i], cx.diags ? cx.diags->msg : "");
            cr_expect_eq(g->ops.len, lens[i]);
            for (int k = 0; k < g->ops.len; k++) cr_assert_eq(g->ops.data[k]->kind, DN_OP_RELU);
            dn_graph_free(g);
            if (lens[i] != 1500) expect_dnnc_ok(src);
            free(src);
        }
}

/* The k-th '+' of "  y = x + x + ..." is at column 9 + 4 (k - 1); the op
 * budget (20,000 ops) is passed by the 20,001st. */
Test(limits, long_sums_stop_at_the_op_budget, .fini = cleanup)
{
    static const int lens[] = {21000, 100000};
    for (int i = 0; i < 2; i++) {
        char *src = sum_source(lens[i]);
        cr_assert_null(lower(src));
        const DnDiag *d = first_error();
        cr_expect_eq(d->loc.line, 2);
        cr_expect_eq(d->loc.col, 9 + 4 * 20000, "col %d", d->loc.col);
        cr_expect(strstr(d->msg, "more than 20000 ops"), "%s", d->msg);
        cr_expect_eq(cx.nerr, 1, "one error, no cascade");
        expect_dnnc_error(src, "t.dnn:2:80009: error: the model unrolls to more than 20000 ops", 0);
        expect_dnnc_error(src, "t.dnn:2:80009: error: the model unrolls to more than 20000 ops", 1024);
        cr_expect_eq(dnnc(src, "--emit=ast", 1024), 0, "%.500s", out); /* parses: the budget is lowering's */
        cr_expect_lt(out_size(), 600L * (lens[i] + 10), "the dump is linear in the chain's length");
        free(src);
        dn_ctx_free(&cx);
    }
}

Test(limits, long_products_evaluate_at_compile_time, .fini = cleanup)
{
    char *src = product_source("1", 30000);
    DnGraph *g = lower(src);
    cr_assert_not_null(g, "%s", cx.diags ? cx.diags->msg : "");
    cr_expect_eq(g->ops.len, 1); /* x * k: one scale */
    dn_graph_free(g);
    expect_dnnc_ok(src);
    free(src);
    /* 2 * 2 * ... overflows at the 62nd '*' (2^63), at column 9 + 4 * 61 */
    src = product_source("2", 30000);
    cr_assert_null(lower(src));
    const DnDiag *d = first_error();
    cr_expect_eq(d->loc.line, 2);
    cr_expect_eq(d->loc.col, 9 + 4 * 61, "col %d", d->loc.col);
    cr_expect_str_eq(d->msg, "integer overflow: 4611686018427387904 * 2 does not fit in a 64-bit int");
    expect_dnnc_error(src, "t.dnn:2:253: error: integer overflow", 1024);
    free(src);
}

Test(limits, long_conditional_chains, .fini = cleanup)
{
    char *src = ternary_source(50000);
    DnGraph *g = lower(src);
    cr_assert_not_null(g, "%s", cx.diags ? cx.diags->msg : "");
    cr_expect_float_eq(dn_op_float(g->ops.data[0], "alpha"), 2.0, 0, "the last branch");
    dn_graph_free(g);
    expect_dnnc_ok(src);
    free(src);
    src = else_if_source(50000);
    g = lower(src);
    cr_assert_not_null(g, "%s", cx.diags ? cx.diags->msg : "");
    cr_expect_eq(g->ops.len, 1);
    cr_expect_eq(g->ops.data[0]->kind, DN_OP_RELU, "the final else");
    dn_graph_free(g);
    expect_dnnc_ok(src);
    free(src);
}

/* ---- nesting through blocks --------------------------------------------------------- */

Test(limits, nesting_through_blocks_is_limited, .fini = cleanup)
{
    char *src = nested_blocks_source(4, 100); /* about 400 levels: fine */
    DnGraph *g = lower(src);
    cr_assert_not_null(g, "%s", cx.diags ? cx.diags->msg : "");
    cr_expect_eq(g->ops.len, 400);
    dn_graph_free(g);
    expect_dnnc_ok(src);
    free(src);
    src = nested_blocks_source(60, 150);
    cr_assert_null(lower(src));
    cr_expect(strstr(first_error()->msg, "nests too deeply"), "%s", first_error()->msg);
    cr_expect_eq(cx.nerr, 1, "one error, no cascade");
    expect_dnnc_error(src, ": error: the model nests too deeply", 0);
    expect_dnnc_error(src, ": error: the model nests too deeply", 1024);
    free(src);
}

/* ---- NUL bytes and the size limit ----------------------------------------------------- */

static const char nul_src[] = "model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n"
                              "  y = x\0\n"
                              "  # a comment \0 goes on\n"
                              "  s = \"a\0b\"\n"
                              "  z = w\n"
                              "}\n";

Test(limits, nul_bytes_are_errors_at_their_position)
{
    DnAst *ast = dn_parse_n(&cx, "t.dnn", nul_src, sizeof nul_src - 1, &ar);
    cr_assert_null(ast);
    int want[3][2] = {{2, 8}, {3, 15}, {4, 9}}, n = 0;
    for (const DnDiag *d = cx.diags; d; d = d->next) {
        cr_assert_lt(n, 3, "unexpected: %d:%d: %s", d->loc.line, d->loc.col, d->msg);
        cr_expect_str_eq(d->msg, "NUL byte in source");
        cr_expect_eq(d->loc.line, want[n][0], "NUL %d: line %d", n, d->loc.line);
        cr_expect_eq(d->loc.col, want[n][1], "NUL %d: col %d", n, d->loc.col);
        n++;
    }
    cr_expect_eq(n, 3);
    /* the text registered for carets shows the NULs as spaces and goes on past them */
    cr_expect(strstr(cx.sources->text, "  z = w\n"), "%s", cx.sources->text);
    /* the lexer went on: a later error is still found */
    dn_ctx_free(&cx);
    static const char src2[] = "model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n  y = x\0\n  y = (x\n}\n";
    cr_assert_null(dn_parse_n(&cx, "t.dnn", src2, sizeof src2 - 1, &ar));
    cr_expect_eq(cx.nerr, 2, "the NUL and the missing ')'");
}

Test(limits, dn_input_check_text_finds_nul_bytes)
{
    cr_expect_eq(dn_input_check_text(&cx, "t.dnn", nul_src, sizeof nul_src - 1), DN_ERR);
    cr_expect_eq(cx.nerr, 3);
    cr_expect_eq(cx.diags->loc.line, 2);
    cr_expect_eq(cx.diags->loc.col, 8);
    cr_expect_str_eq(cx.diags->msg, "NUL byte in source");
    static const char run[] = "ab\0\0\0cd\n\0";
    dn_ctx_free(&cx);
    cr_expect_eq(dn_input_check_text(&cx, "t.dnn", run, sizeof run - 1), DN_ERR);
    cr_expect_eq(cx.nerr, 2, "one error per run of NULs");
    dn_ctx_free(&cx);
    cr_expect_eq(dn_input_check_text(&cx, "t.dnn", head, strlen(head)), DN_OK);
    cr_expect_eq(cx.nerr, 0);
}

Test(limits, sources_past_the_size_limit_are_refused)
{
    size_t n = DN_MAX_SOURCE_BYTES + 1;
    char *big = malloc(n + 1);
    cr_assert_not_null(big);
    memset(big, ' ', n);
    big[n] = 0;
    cr_assert_null(dn_parse_n(&cx, "t.dnn", big, n, &ar));
    cr_expect_eq(cx.nerr, 1);
    cr_expect_eq(cx.diags->loc.line, 1);
    cr_expect(strstr(cx.diags->msg, "more than"), "%s", cx.diags->msg);
    free(big);
}

/* ---- compile-time ints ------------------------------------------------------------------ */

Test(limits, int_comparison_is_exact)
{
    /* 2^53 + 1 and 2^53 are equal as doubles; as ints they differ */
    DnGraph *g = lower("model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n"
                       "  y = 9007199254740993 == 9007199254740992 ? (x |> relu) : (x |> tanh)\n"
                       "}\n");
    cr_assert_not_null(g, "%s", cx.diags ? cx.diags->msg : "");
    cr_expect_eq(g->ops.data[0]->kind, DN_OP_TANH);
    dn_graph_free(g);
}

/* ---- time and memory on big sources -------------------------------------------------------- */

/* Runs dnnc --emit=ir on 'path'; returns its exit status, with its wall
 * time and peak resident memory. */
static int measure(const char *path, double *secs, long *rss_kb)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(127);
        execl(DNNC_BIN, DNNC_BIN, "--emit=ir", path, (char *)NULL);
        _exit(127);
    }
    int st;
    struct rusage ru;
    cr_assert_eq(wait4(pid, &st, 0, &ru), pid);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    *rss_kb = ru.ru_maxrss;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* About 'mb' MB of statements made by 'stmt' (a printf format taking the
 * statement's number), written to a file in 'dir' whose path goes to 'path'. */
static const char *big_source(double mb, const char *stmt, char *path, size_t len)
{
    if (!dir[0]) dn_test_tmpdir(dir, sizeof dir, "dnnc-limits");
    snprintf(path, len, "%s/big.dnn", dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    long size = fprintf(f, "%s", head);
    for (int i = 0; size < (long)(mb * (1 << 20)); i++) size += fprintf(f, stmt, i, i);
    fprintf(f, "  y = x\n}\n");
    fclose(f);
    return path;
}

Test(limits, big_sources_take_linear_time_and_memory, .fini = cleanup)
{
    static const struct {
        const char *stmt;
        double mb;
    } cases[] = {
        {"  y = x\n", 4},                /* the densest statements: 8 bytes each */
        {"  v%d = %d\n", 3},             /* as many distinct names (quadratic before: 16 s per MB) */
        {"  y = l%d: dense(x, 4)\n", 1}, /* labelled layers, past the op budget */
    };
    for (int i = 0; i < 3; i++) {
        char path[300];
        big_source(cases[i].mb, cases[i].stmt, path, sizeof path);
        double secs;
        long rss;
        int rc = measure(path, &secs, &rss);
        cr_expect_eq(rc, i == 2 ? 1 : 0, "'%s': exit status %d", cases[i].stmt, rc);
        long budget_kb = (long)(100 * cases[i].mb * 1024) + 100 * 1024; /* 100 bytes per byte of source + 100 MB */
        cr_expect_lt(rss, budget_kb, "'%s': %ld KB peak for %.1f MB", cases[i].stmt, rss, cases[i].mb);
        cr_expect_lt(secs, 60.0, "'%s': %.1f s for %.1f MB", cases[i].stmt, secs, cases[i].mb);
    }
}
