/* test_robust.c -- bad input never crashes the compiler or the loader
 * (docs/design.md, "Bad input"): deterministic, in-process mutation sweeps.
 *
 *  - every .dnn of examples/, tests/ir/, tests/golden/ (and tests/diag/,
 *    fewer mutants), each mutated a few hundred times with a fixed-seed PRNG
 *    (byte flips, deleted / duplicated spans and lines, tokens of the
 *    language inserted, numbers replaced by hostile ones) and truncated at
 *    every k-th byte, through parse -> lower -> verify -> every pass on the
 *    inference and training graphs -> state layout -> memory plan;
 *  - the IR text of the training graphs (as lowered, with loss and
 *    optimizer lines, and after the training pass) through the IR reader,
 *    the print/read round trip and the same pipeline (test_ir.c covers the
 *    inference-only graph of every op kind);
 *  - a safetensors file written by dnrt_st_write, with its length field,
 *    header bytes, numbers (shapes, data_offsets) and size damaged, through
 *    dnrt_st_read.
 * The invariants are those of tests/fuzz/robust.h, which the libFuzzer
 * harnesses share.  A crash prints the input that caused it to stderr.
 * DNNC_ROBUST_SCALE=K multiplies the number of mutants (default 1). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../fuzz/robust.h"
#include "testlib.h"

/* ---- the input under test, shown if the process dies ------------------------ */

static const char *cur_what = "";
static const char *cur_text = "";
static size_t cur_len;

static void put(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void on_crash(int sig)
{
    static const char head[] = "\n==== test_robust: the process died on this input (";
    put(head, sizeof head - 1);
    put(cur_what, strlen(cur_what));
    put("):\n", 3);
    put(cur_text, cur_len);
    put("\n==== end of input\n", 19);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void arm_crash_report(void)
{
    int sigs[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], on_crash);
}

/* ---- PRNG (splitmix64, fixed seeds) ------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static void seed_from(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    rng_state = h;
}

static int scale(void)
{
    const char *s = getenv("DNNC_ROBUST_SCALE");
    int k = s ? atoi(s) : 1;
    return k > 0 ? k : 1;
}

/* ---- a growable byte buffer and the mutations ---------------------------------- */

typedef struct Buf {
    char *p;
    size_t len, cap;
} Buf;

static void buf_reserve(Buf *b, size_t n)
{
    if (n + 1 <= b->cap) return;
    b->cap = 2 * (n + 1);
    b->p = realloc(b->p, b->cap);
    cr_assert_not_null(b->p);
}

static void buf_set(Buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p, s, n);
    b->len = n;
    b->p[n] = 0;
}

static void buf_insert(Buf *b, size_t at, const char *s, size_t n)
{
    buf_reserve(b, b->len + n);
    memmove(b->p + at + n, b->p + at, b->len - at);
    memcpy(b->p + at, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void buf_erase(Buf *b, size_t at, size_t n)
{
    if (at + n > b->len) n = b->len - at;
    memmove(b->p + at, b->p + at + n, b->len - at - n);
    b->len -= n;
    b->p[b->len] = 0;
}

static const char *const hostile_numbers[] = {
    "0",
    "-1",
    "1",
    "2",
    "-0",
    "1e300",
    "1e-300",
    "1e309",
    "99999999999999999999",
    "2147483647",
    "2147483648",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "65536",
    "0.5",
    "3.0",
    "1.",
    "1e",
    "0x10",
    "007",
    "nan",
    "inf",
    "-inf",
    "1000000",
    "46341",
    "100000",
};

/* Replaces the number around a random position (or the next one) by a hostile one. */
static void replace_number(Buf *b)
{
    if (!b->len) return;
    size_t i = below(b->len);
    while (i < b->len && !(b->p[i] >= '0' && b->p[i] <= '9')) i++;
    if (i >= b->len) return;
    size_t s = i, e = i;
    while (s > 0 && ((b->p[s - 1] >= '0' && b->p[s - 1] <= '9') || b->p[s - 1] == '.' || b->p[s - 1] == '-')) s--;
    while (e < b->len && ((b->p[e] >= '0' && b->p[e] <= '9') || b->p[e] == '.' || b->p[e] == 'e')) e++;
    const char *n = hostile_numbers[below(sizeof hostile_numbers / sizeof hostile_numbers[0])];
    buf_erase(b, s, e - s);
    buf_insert(b, s, n, strlen(n));
}

/* Bounds of the line holding byte 'i': [*s, *e) with the newline in it. */
static void line_at(const Buf *b, size_t i, size_t *s, size_t *e)
{
    *s = i;
    while (*s > 0 && b->p[*s - 1] != '\n') (*s)--;
    *e = i;
    while (*e < b->len && b->p[*e] != '\n') (*e)++;
    if (*e < b->len) (*e)++;
}

/* One random mutation; 'vocab' are tokens worth inserting. */
static void mutate(Buf *b, const char *const *vocab, size_t nvocab)
{
    size_t at = below(b->len + 1);
    switch (below(9)) {
    case 0: /* flip a bit */
        if (b->len) b->p[below(b->len)] ^= (char)(1 << below(8));
        break;
    case 1: /* a random byte (never NUL: that would only truncate) */
        if (b->len) b->p[below(b->len)] = (char)(1 + below(255));
        break;
    case 2: /* delete a span */
        if (b->len) buf_erase(b, below(b->len), 1 + below(below(2) ? 4 : 48));
        break;
    case 3: { /* duplicate a span elsewhere */
        if (!b->len) break;
        size_t s = below(b->len), n = 1 + below(64);
        if (s + n > b->len) n = b->len - s;
        char tmp[64];
        memcpy(tmp, b->p + s, n);
        buf_insert(b, at, tmp, n);
        break;
    }
    case 4:
    case 5: { /* insert a token */
        const char *t = vocab[below(nvocab)];
        if (below(2)) buf_insert(b, at, " ", 1);
        buf_insert(b, at, t, strlen(t));
        if (below(2)) buf_insert(b, at, " ", 1);
        break;
    }
    case 6: replace_number(b); break;
    case 7: { /* duplicate a whole line (duplicate declarations, labels, params) */
        if (!b->len) break;
        size_t s, e;
        line_at(b, below(b->len), &s, &e);
        char *tmp = strndup(b->p + s, e - s);
        size_t s2, e2;
        line_at(b, below(b->len), &s2, &e2);
        buf_insert(b, s2, tmp, strlen(tmp));
        if (!strchr(tmp, '\n')) buf_insert(b, s2 + strlen(tmp), "\n", 1);
        free(tmp);
        break;
    }
    case 8: { /* delete a whole line */
        if (!b->len) break;
        size_t s, e;
        line_at(b, below(b->len), &s, &e);
        buf_erase(b, s, e - s);
        break;
    }
    }
}

/* ---- reading the inputs --------------------------------------------------------- */

typedef struct Corpus {
    char *path[64], *name[64];
    int n;
} Corpus;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every .dnn of 'dir' (relative to the source tree), sorted. */
static void add_dir(Corpus *c, const char *dir)
{
    char full[1024];
    snprintf(full, sizeof full, "%s/%s", DNNC_SOURCE_DIR, dir);
    DIR *d = opendir(full);
    cr_assert_not_null(d, "cannot open %s", full);
    int first = c->n;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".dnn") || c->n == 64) continue;
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", full, e->d_name);
        c->path[c->n] = strdup(p);
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        c->name[c->n++] = strdup(p);
    }
    closedir(d);
    qsort(c->path + first, (size_t)(c->n - first), sizeof(char *), cmp_str);
    qsort(c->name + first, (size_t)(c->n - first), sizeof(char *), cmp_str);
}

static void corpus_free(Corpus *c)
{
    for (int i = 0; i < c->n; i++) free(c->path[i]), free(c->name[i]);
}

/* ---- the .dnn sweep --------------------------------------------------------------- */

static const char *const dnn_vocab[] = {
    "|>",
    ":",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    "=",
    "->",
    ".",
    "?",
    "+",
    "-",
    "*",
    "/",
    "@",
    "==",
    "!=",
    "<",
    ">=",
    "\n",
    "\"",
    "\"x",
    "#",
    "\\",
    "\t",
    "\xff",
    "\xc3\xa9",
    "model",
    "block",
    "train",
    "return",
    "repeat",
    "as",
    "if",
    "else",
    "param",
    "and",
    "or",
    "not",
    "true",
    "false",
    "N",
    "x",
    "y",
    "image",
    "logits",
    "label",
    "f32",
    "i32",
    "i64",
    "f32[N]",
    "f32[]",
    "f32[N, 0]",
    "i32[N]",
    "dense",
    "conv2d",
    "relu",
    "batchnorm",
    "maxpool",
    "avgpool",
    "global_avgpool",
    "flatten",
    "softmax",
    "log_softmax",
    "dropout",
    "reshape",
    "transpose",
    "matmul",
    "const",
    "add",
    "mse",
    "cross_entropy",
    "tanh",
    "sigmoid",
    "stride=",
    "kernel=",
    "pad=",
    "groups=",
    "dilation=",
    "bias=false",
    "axis=",
    "p=",
    "lr=",
    "momentum=",
    "weight_decay=",
    "schedule=",
    "cosine(total_steps=0)",
    "step(step_size=0)",
    "adam",
    "adamw",
    "sgd",
    "freeze",
    "loss",
    "optimizer",
    "repeat 100000 {",
    "repeat 0 {",
    "repeat -1 as i {",
    "channels(x)",
    "x |> fc: dense(0)",
    "a.b.c:",
    "0",
    "-1",
    "1",
    "1e300",
    "99999999999999999999",
    "2147483648",
    "9223372036854775807",
    "0.0",
    "1e-300",
    "zeros",
    "ones",
    "normal(std=0)",
    "uniform(a=1, b=-1)",
    "param w: f32[0] = zeros",
};
#define NDNN_VOCAB (sizeof dnn_vocab / sizeof dnn_vocab[0])

/* Reports a broken invariant; after the tenth, only counts them. */
static int nfail;

static void report(const char *what, const char *why, const char *text)
{
    if (!why) return;
    if (++nfail <= 10)
        cr_expect_null(why, "%s: %s\n---- input:\n%s\n----", what, why, text);
    else if (nfail == 11)
        cr_expect(false, "more broken invariants, not shown");
}

/* Checks one mutant; 'what' describes it for failure messages. */
static void check_dnn(const char *file, const Buf *b, const char *what)
{
    cur_what = what;
    cur_text = b->p;
    cur_len = b->len;
    report(what, rb_check_dnn(file, b->p), b->p);
}

/* Mutants of one .dnn: truncations at every k-th byte, then 'nmut' mutants
 * of 1 to 3 mutations each. */
static void sweep_dnn(const char *path, const char *name, int nmut)
{
    size_t len;
    char *orig = dn_test_slurp(path, &len);
    Buf b = {0};
    char what[256];
    const char *file = strrchr(name, '/') + 1;

    buf_set(&b, orig, len); /* the file itself must be fine (diag files: errors, no crash) */
    snprintf(what, sizeof what, "%s unmodified", name);
    check_dnn(file, &b, what);

    size_t k = len / 60 + 1;
    for (size_t cut = 0; cut < len; cut += k) {
        buf_set(&b, orig, cut);
        snprintf(what, sizeof what, "%s truncated to %zu bytes", name, cut);
        check_dnn(file, &b, what);
    }
    seed_from(name);
    for (int m = 0; m < nmut; m++) {
        buf_set(&b, orig, len);
        int nm = 1 + (int)below(3);
        for (int j = 0; j < nm; j++) mutate(&b, dnn_vocab, NDNN_VOCAB);
        snprintf(what, sizeof what, "%s mutant %d", name, m);
        check_dnn(file, &b, what);
    }
    free(b.p);
    free(orig);
}

Test(robust, dnn_mutants_never_crash, .timeout = 120)
{
    arm_crash_report();
    Corpus c = {0};
    add_dir(&c, "examples");
    add_dir(&c, "tests/ir");
    add_dir(&c, "tests/golden");
    int nmodels = c.n;
    add_dir(&c, "tests/diag");
    cr_assert_geq(nmodels, 10, "only %d models found under %s", nmodels, DNNC_SOURCE_DIR);
    rb_stats = (RbStats){0};
    for (int i = 0; i < c.n; i++) sweep_dnn(c.path[i], c.name[i], (i < nmodels ? 1000 : 60) * scale());
    /* The sweep is only worth its time if many mutants reach the back stages. */
    cr_expect_gt(rb_stats.planned, rb_stats.inputs / 20, "only %ld of %ld mutants reached the memory plan",
                 rb_stats.planned, rb_stats.inputs);
    cr_expect_gt(rb_stats.trained, rb_stats.inputs / 40, "only %ld of %ld mutants reached the training graph",
                 rb_stats.trained, rb_stats.inputs);
    cr_log_info("dnn sweep: %ld inputs, %ld parsed, %ld lowered, %ld planned, %ld trained", rb_stats.inputs,
                rb_stats.parsed, rb_stats.lowered, rb_stats.planned, rb_stats.trained);
    corpus_free(&c);
}

/* ---- the IR reader on training graphs -------------------------------------------- */

static const char *const ir_vocab[] = {
    "%",
    "@",
    "%0",
    "%7",
    "%999999",
    "%x",
    "%label",
    "@fc1.weight",
    "func",
    "param",
    "loss",
    "optimizer",
    "ret",
    "train_only",
    "weight",
    "buffer",
    "optim",
    "frozen",
    "trainable",
    "zeros",
    "ones",
    "uniform(",
    "normal(0, 1)",
    "f32",
    "i32",
    "i64",
    "f32[]",
    "f32[N]",
    "i32[N]",
    "f32[0]",
    "[",
    "]",
    "N",
    ",",
    "{",
    "}",
    "(",
    ")",
    "=",
    ":",
    "->",
    "\"",
    "\"\\\"",
    "\\",
    "loc(",
    "loc(\"a\":0:0)",
    "loc(\"a\":99999999999:1)",
    "\n",
    "#",
    "inf",
    "nan",
    "-0",
    "1e309",
    "0",
    "-1",
    "99999999999999999999",
    "9223372036854775807",
    "{lr = -1}",
    "{p = 1.0, salt = 0}",
    "{shape = [-1, 0]}",
    "{axis = 99}",
    "{perm = [1, 1]}",
    "dense",
    "relu",
    "add",
    "matmul",
    "conv2d",
    "batchnorm",
    "batchnorm_train",
    "dropout",
    "reshape",
    "sgd_update",
    "adam_update",
    "cross_entropy",
    "sum_to",
    "fill",
    "softmax",
    "transpose",
};
#define NIR_VOCAB (sizeof ir_vocab / sizeof ir_vocab[0])

/* The text of 'g''s training or inference graph after dn_compile (NULL if
 * it fails, or a pass leaves a graph that does not verify). */
static char *optimized_text(const DnGraph *g, bool training)
{
    DnCtx cx;
    dn_ctx_init(&cx);
    DnArena a = {0};
    DnModule m;
    const char *why = NULL;
    DnCompileOptions o = {.after_pass = rb_after_pass, .after_pass_arg = &why};
    char *s = NULL;
    if (dn_compile(&cx, g, &o, &m, &a) == DN_OK && cx.nerr == 0 && (training ? m.train : m.infer))
        s = rb_print(training ? m.train : m.infer);
    dn_module_free(&m);
    dn_arena_free(&a);
    dn_ctx_free(&cx);
    return s;
}

static void sweep_ir(const char *name, const char *text, int nmut)
{
    Buf b = {0};
    char what[256];
    size_t len = strlen(text);
    cur_what = name;
    cur_text = text;
    cur_len = len;
    const char *why = rb_check_ir("m.dnir", text);
    cr_assert_null(why, "%s unmodified: %s", name, why);
    size_t k = len / 80 + 1;
    for (size_t cut = 0; cut < len; cut += k) {
        buf_set(&b, text, cut);
        snprintf(what, sizeof what, "%s truncated to %zu bytes", name, cut);
        cur_what = what, cur_text = b.p, cur_len = b.len;
        report(what, rb_check_ir("m.dnir", b.p), b.p);
    }
    seed_from(name);
    for (int m = 0; m < nmut; m++) {
        buf_set(&b, text, len);
        int nm = 1 + (int)below(3);
        for (int j = 0; j < nm; j++) mutate(&b, ir_vocab, NIR_VOCAB);
        snprintf(what, sizeof what, "%s mutant %d", name, m);
        cur_what = what, cur_text = b.p, cur_len = b.len;
        report(what, rb_check_ir("m.dnir", b.p), b.p);
    }
    free(b.p);
}

/* The first of the models 'src' defines when it defines several (lines
 * "model NAME(...)"), in 'buf'; NULL for a file with one model. */
static const char *first_of_several_models(const char *src, char buf[64])
{
    int n = 0;
    char name[64];
    for (const char *p = src; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (sscanf(p, "model %63[A-Za-z0-9_](", name) == 1 && n++ == 0) memcpy(buf, name, sizeof name);
    return n > 1 ? buf : NULL;
}

Test(robust, training_ir_mutants_never_crash, .timeout = 120)
{
    arm_crash_report();
    Corpus c = {0};
    add_dir(&c, "examples");
    add_dir(&c, "tests/ir");
    add_dir(&c, "tests/golden");
    rb_stats = (RbStats){0};
    int ntrain = 0;
    for (int i = 0; i < c.n; i++) {
        char *src = dn_test_slurp(c.path[i], NULL);
        DnCtx cx;
        dn_ctx_init(&cx);
        DnArena a = {0};
        DnAst *ast = dn_parse(&cx, strrchr(c.name[i], '/') + 1, src, &a);
        char model[64];
        DnGraph *g = ast ? dn_lower(&cx, ast, first_of_several_models(src, model)) : NULL;
        if (!g || cx.nerr) /* every model in these folders must compile; its IR could not be swept */
            cr_expect_fail("%s does not compile (%s)", c.name[i], cx.diags ? cx.diags->msg : "?");
        else if (g->loss) {
            ntrain++;
            char name[300], *lowered = rb_print(g), *trained = optimized_text(g, true);
            cr_assert_not_null(trained, "%s: the training pipeline failed", c.name[i]);
            snprintf(name, sizeof name, "%s (lowered IR)", c.name[i]);
            sweep_ir(name, lowered, 400 * scale());
            snprintf(name, sizeof name, "%s (training IR)", c.name[i]);
            sweep_ir(name, trained, 400 * scale());
            free(lowered);
            free(trained);
        }
        dn_graph_free(g);
        dn_arena_free(&a);
        dn_ctx_free(&cx);
        free(src);
    }
    cr_assert_geq(ntrain, 4, "only %d models with a train section", ntrain);
    cr_expect_gt(rb_stats.ir_read, 0);
    cr_log_info("ir sweep: %ld texts, %ld read back", rb_stats.inputs, rb_stats.ir_read);
    corpus_free(&c);
}

/* ---- the safetensors reader ------------------------------------------------------- */

static const char *const json_vocab[] = {
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u",
    "\\ud800",
    "\\u0000",
    "\"\"",
    "null",
    "true",
    "1",
    "-1",
    "0",
    "1e3",
    "18446744073709551616",
    "9223372036854775808",
    "\"dtype\"",
    "\"shape\"",
    "\"data_offsets\"",
    "\"__metadata__\"",
    "\"F32\"",
    "\"F16\"",
    "\"BOOL\"",
    "\"I64\"",
    "[]",
    "{}",
    " ",
    "\n",
    "\x01",
    "\xff",
};
#define NJSON_VOCAB (sizeof json_vocab / sizeof json_vocab[0])

static char st_dir[64];

/* Writes 8-byte length 'hlen', header 'h' and data 'd' to 'path'. */
static size_t write_st(const char *path, uint64_t hlen, const Buf *h, const char *d, size_t nd)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 8; i++) fputc((int)(hlen >> (8 * i) & 0xff), f);
    fwrite(h->p, 1, h->len, f);
    fwrite(d, 1, nd, f);
    fclose(f);
    return 8 + h->len + nd;
}

Test(robust, safetensors_mutants_never_crash, .timeout = 120)
{
    arm_crash_report();
    strcpy(st_dir, "/tmp/dnnc_robust_XXXXXX");
    cr_assert_not_null(mkdtemp(st_dir));
    char good[128], path[128];
    snprintf(good, sizeof good, "%s/good.safetensors", st_dir);
    snprintf(path, sizeof path, "%s/m.safetensors", st_dir);

    float a[6] = {1, 2, 3, 4, 5, 6};
    int32_t bi[4] = {1, -2, 3, -4};
    int64_t c = 42;
    dnrt_st_tensor t[] = {
        {.name = "fc.weight", .dtype = DNRT_F32, .rank = 2, .dim = {2, 3}, .data = a, .nbytes = sizeof a},
        {.name = "idx", .dtype = DNRT_I32, .rank = 1, .dim = {4}, .data = bi, .nbytes = sizeof bi},
        {.name = "step", .dtype = DNRT_I64, .rank = 0, .data = &c, .nbytes = 8},
        {.name = "empty \"q\"", .dtype = DNRT_F32, .rank = 2, .dim = {0, 5}, .data = NULL, .nbytes = 0},
        {.name = "bn.running_var", .dtype = DNRT_F32, .rank = 1, .dim = {2}, .data = a + 4, .nbytes = 8},
    };
    const char *keys[] = {"format", "k\"\\"}, *vals[] = {"pt", "v\n\xc3\xa9"};
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_write(good, 5, t, 2, keys, vals, &err), 0, "%s", err.message);
    size_t size;
    char *img = dn_test_slurp(good, &size);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)(unsigned char)img[i] << (8 * i);
    cr_assert(hlen + 8 <= size);
    const char *data = img + 8 + hlen;
    size_t ndata = size - 8 - hlen;

    cur_what = "safetensors";
    cur_text = "(binary)";
    cur_len = 8;
    const char *why = rb_check_st(good, size);
    cr_assert_null(why, "the unmodified file: %s", why);

    Buf h = {0}, whole = {0};
    char what[128];
    seed_from("safetensors");
    int nmut = 5000 * scale(), fails = 0;
    for (int m = 0; m < nmut; m++) {
        buf_set(&h, img + 8, hlen);
        uint64_t len = hlen;
        size_t nd = ndata, fsize;
        int kind = (int)below(7);
        switch (kind) {
        case 0: { /* damage the length field only */
            static const uint64_t lens[] = {0, 1, 2, 7, 8, UINT64_MAX, 1ull << 63, (1ull << 63) - 1, 100000001};
            if (below(2))
                len = lens[below(sizeof lens / sizeof lens[0])];
            else
                len = hlen + below(2 * 64 + 1) - 64;
            break;
        }
        case 1: /* bytes of the header, length kept */
            for (int j = 1 + (int)below(3); j > 0; j--) h.p[below(h.len)] = (char)below(256);
            break;
        case 2:
        case 3: /* numbers (shapes, data_offsets) and tokens, length fixed */
            for (int j = 1 + (int)below(3); j > 0; j--) {
                if (kind == 2)
                    replace_number(&h);
                else
                    mutate(&h, json_vocab, NJSON_VOCAB);
            }
            len = h.len;
            break;
        case 4: /* data section shortened or grown */ nd = below(2) ? below(ndata + 1) : ndata + below(64); break;
        case 5: /* truncation of the whole file */
            fsize = write_st(path, len, &h, data, nd);
            cr_assert_eq(truncate(path, (off_t)below(fsize + 1)), 0);
            break;
        case 6: /* spans anywhere in the file */
            buf_set(&whole, img, size);
            for (int j = 1 + (int)below(3); j > 0; j--) mutate(&whole, json_vocab, NJSON_VOCAB);
            break;
        }
        if (kind == 6) {
            FILE *f = fopen(path, "wb");
            fwrite(whole.p, 1, whole.len, f);
            fclose(f);
        } else if (kind == 4 && nd > ndata) {
            char *d2 = calloc(1, nd);
            memcpy(d2, data, ndata);
            write_st(path, len, &h, d2, nd);
            free(d2);
        } else if (kind != 5) {
            write_st(path, len, &h, data, nd);
        }
        struct stat stt;
        cr_assert_eq(stat(path, &stt), 0);
        snprintf(what, sizeof what, "safetensors mutant %d (kind %d)", m, kind);
        cur_what = what;
        why = rb_check_st(path, (size_t)stt.st_size);
        if (why) {
            char *bytes = dn_test_slurp(path, NULL);
            cr_expect_null(why, "%s: %s (header: %.*s)", what, why, (int)(stt.st_size > 8 ? stt.st_size - 8 : 0),
                           bytes + 8);
            free(bytes);
            if (++fails > 10) break;
        }
    }
    cr_log_info("safetensors sweep: %d damaged files", nmut);
    free(h.p);
    free(whole.p);
    free(img);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", st_dir);
    cr_expect_eq(system(cmd), 0);
}
