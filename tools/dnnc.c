/* dnnc.c -- the compiler driver: command-line parsing and output only.
 *
 *   source --dn_parse--> AST --dn_lower--> graph      (frontend/, by file type)
 *   graph --dn_compile--> module: inference + training graphs, plans   (passes/pipeline.h)
 *   module --dn_build_library--> .o --link--> .so + .h                 (backends/, --target)
 *
 * Every stage can be printed (--emit, --print-after) and every optimization
 * pass skipped (-fno-NAME), so the effect of each is visible.  Outputs are
 * written to a temporary name and renamed (backends/output.h), so a failed
 * compile or a full disk never destroys an existing library, header or
 * --emit file, and no output may be the input file itself.  The input must
 * be a regular file: a FIFO or a device is refused, never waited on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/kernel_cache.h"
#include "backends/output.h"
#include "frontend/frontend.h"
#include "passes/pipeline.h"

#define DNNC_VERSION   "0.1.0"
#define DEFAULT_TARGET "cpu"

typedef enum { EMIT_LIB, EMIT_AST, EMIT_IR, EMIT_IR_OPT, EMIT_PLAN, EMIT_CODE, EMIT_HEADER } EmitKind;

typedef struct Options {
    const char *input, *output, *model;
    EmitKind emit;
    bool train_graph;         /* --graph=train */
    const DnBackend *target;  /* --target */
    DnCompileOptions compile; /* the pipeline: --no-train, -fno-, --passes, --print-after, --verify-each */
    DnBackendOptions backend;
    bool no_cache; /* --no-cache: backend.cache_dir stays NULL */
} Options;

static void usage(FILE *out)
{
    fprintf(out, "usage: dnnc MODEL.dnn|MODEL.dnir [-o OUT.so] [options]\n"
                 "\n"
                 "Compiles a model (.dnn source, or .dnir: the IR text that --emit=ir prints)\n"
                 "into a shared library OUT.so and its C header OUT.h\n"
                 "(default OUT: the input's name with .so, in the current folder). The library\n"
                 "runs inference and, when the file has a train section, a training step.\n"
                 "\n"
                 "options:\n"
                 "  -o PATH             output library (the header is PATH with .h)\n"
                 "  --model NAME        the model to compile when the file defines several\n"
                 "  --no-train          inference-only library, even with a train section\n"
                 "  --target=NAME       the code generator (default " DEFAULT_TARGET "; the list is below)\n"
                 "  --emit=KIND         print a stage to stdout (or to -o PATH) instead of building:\n"
                 "                        ast     the parsed syntax tree\n"
                 "                        ir      the graph as lowered from the source\n"
                 "                        ir-opt  the inference graph after all passes\n"
                 "                                (with --graph=train: the training graph)\n"
                 "                        plan    the memory plan of that graph\n"
                 "                        code    the target's code for the whole library\n"
                 "                                (cpu: the optimized LLVM IR)\n"
                 "                        llvm    the same as code\n"
                 "                        header  the generated C header\n"
                 "  --graph=infer|train which graph --emit=ir-opt/plan shows (default infer)\n"
                 "  --passes=A,B,...    run these graph passes, in this order (the pass that defines\n"
                 "                      the graph, training or inference, runs first if not listed);\n"
                 "                      plan-memory always runs last, and may only end the list\n"
                 "  -fno-PASS           skip one optimization pass of the default pipeline\n"
                 "  --print-after=STAGE print each graph to stderr after STAGE (plan-memory: each\n"
                 "                      graph's memory plan, as --emit=plan; 'all': after every stage)\n"
                 "  --verify-each       run the IR verifier after every pass (always done at the end)\n"
                 "  --cpu=NAME          LLVM target CPU (default: this machine's, e.g. znver3)\n"
                 "  --features=LIST     LLVM target features (default: this machine's)\n"
                 "  -O0 -O1 -O2 -O3     LLVM optimization level (default -O3)\n"
                 "  --attention-tile=QxK  tile-attention's tiles: Q query rows by K keys (1..4096;\n"
                 "                      default: sized to the CPU's L2 cache, or to the GPU's local memory)\n"
                 "  --direct-kernels    plain loop-nest kernels only, no GEMM micro-kernels\n"
                 "                      (slower; a reference for A/B runs)\n"
                 "  --no-winograd       cpu: 3x3 stride-1 convolutions by GEMM, not Winograd\n"
                 "                      F(2x2, 3x3) (exact sums in the usual order; Winograd's\n"
                 "                      results differ by a few ulps, see docs/design.md)\n"
                 "  --jobs=N, -jN       cpu: threads that optimize and compile the kernels\n"
                 "                      (default: one per core)\n"
                 "  --no-cache          cpu: compile every kernel, without reading or writing the\n"
                 "                      kernel cache ($DNNC_CACHE_DIR, else ~/.cache/dnnc: one\n"
                 "                      object per distinct kernel; safe to delete at any time)\n"
                 "  --stats             cpu: print to stderr how many kernels the library has, how\n"
                 "                      many are distinct, compiled and taken from the cache\n"
                 "  --gpu-arch=LIST     cuda: the GPU architectures to build cubins for, comma-\n"
                 "                      separated (default sm_80,sm_90); PTX for the first one's\n"
                 "                      virtual architecture is embedded too, for newer GPUs\n"
                 "  --precision=P       cuda, opencl: fp32 (default), or tf32, bf16, fp16: operands\n"
                 "                      of convolutions and matrix products rounded to P, sums in\n"
                 "                      fp32 (emulated by rounding: no tensor-core instructions)\n"
                 "  -h, --help          this text\n"
                 "  --help-ops          list the IR ops: operands, results, attributes and defaults\n"
                 "  --version           print the version\n"
                 "\n"
                 "stages (default pipeline, in order):\n");
    for (int i = 0; i < dn_pass_count; i++) fprintf(out, "  %-16s %s\n", dn_pass_table[i].name, dn_pass_table[i].help);
    fprintf(out, "\ntargets (--target=NAME):\n");
    for (int i = 0; i < dn_backend_count; i++) {
        const DnBackend *b = dn_backend_table[i];
        const char *why = NULL;
        bool ok = !b->available || b->available(&why);
        fprintf(out, "  %-8s %s%s%s%s\n", b->name, b->help, ok ? "" : "\n           unavailable here: ", ok ? "" : why,
                "");
    }
    fprintf(out,
            "\nenvironment: DNNC_RUNTIME (runtime archive, default %s), DNNC_CC (C compiler used to link),\n"
            "DNNC_CACHE_DIR (the kernel cache; default $XDG_CACHE_HOME/dnnc or ~/.cache/dnnc),\n"
            "DNNC_CACHE_MAX_MB (its bound, default 1024: the entries used longest ago go first)\n",
            DNNC_RUNTIME_LIB);
}

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "dnnc: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(dnnc --help lists the options)\n");
    return 2;
}

static int parse_emit(Options *o, const char *kind)
{
    static const struct {
        const char *name;
        EmitKind kind;
    } kinds[] = {{"ast", EMIT_AST},   {"ir", EMIT_IR},     {"ir-opt", EMIT_IR_OPT}, {"plan", EMIT_PLAN},
                 {"code", EMIT_CODE}, {"llvm", EMIT_CODE}, {"header", EMIT_HEADER}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kind, kinds[i].name) == 0) {
            o->emit = kinds[i].kind;
            return 0;
        }
    return bad_usage("unknown --emit kind '%s' (ast, ir, ir-opt, plan, code or llvm, header)", kind);
}

static int parse_target(Options *o, const char *name)
{
    o->target = dn_backend_lookup(name);
    if (o->target) return 0;
    char msg[512] = "unknown target '%s' (known:";
    for (int i = 0; i < dn_backend_count; i++) {
        size_t n = strlen(msg);
        snprintf(msg + n, sizeof msg - n, " %s", dn_backend_table[i]->name);
    }
    strncat(msg, ")", sizeof msg - strlen(msg) - 1);
    return bad_usage(msg, name);
}

/* -fno-PASS: only an optimization pass may be skipped (the passes.def kind). */
static int parse_disable(Options *o, const char *flag)
{
    const DnPassInfo *p = dn_pass_lookup(flag + 5);
    if (!p) return bad_usage("unknown pass in '%s'", flag);
    switch (p->kind) {
    case DN_PASS_OPTIMIZATION: o->compile.disabled[p - dn_pass_table] = true; return 0;
    case DN_PASS_PLAN: return bad_usage("'%s': the memory plan always runs", flag);
    default: return bad_usage("'%s': that pass defines its graph and always runs (--no-train drops training)", flag);
    }
}

/* --attention-tile=QxK: both in [1, 4096]. */
static int parse_tile(Options *o, const char *v)
{
    char *end;
    long q = strtol(v, &end, 10), k = 0;
    if (*end == 'x') k = strtol(end + 1, &end, 10);
    if (*end || q < 1 || q > 4096 || k < 1 || k > 4096)
        return bad_usage("--attention-tile=%s: want QxK, two sizes in [1, 4096] (e.g. 64x64)", v), -1;
    o->compile.attention_tile[0] = q;
    o->compile.attention_tile[1] = k;
    return 0;
}

/* --jobs=N, -jN: 1..1024 threads. */
static int parse_jobs(Options *o, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || end == v || n < 1 || n > 1024) return bad_usage("--jobs=%s: want a thread count in [1, 1024]", v), -1;
    o->backend.jobs = (int)n;
    return 0;
}

/* The options of the pipeline and the backend; 1 when 'a' is none of them
 * (-1 after a usage error). */
static int parse_compile_flag(Options *o, const char *a)
{
    if (!strcmp(a, "--no-train"))
        o->compile.no_train = true;
    else if (!strcmp(a, "--verify-each"))
        o->compile.verify_each = true;
    else if (!strncmp(a, "--passes=", 9))
        o->compile.passes = a + 9;
    else if (!strncmp(a, "--print-after=", 14))
        o->compile.print_after = a + 14;
    else if (!strncmp(a, "--attention-tile=", 17))
        return parse_tile(o, a + 17);
    else if (!strcmp(a, "--direct-kernels"))
        o->backend.direct_kernels = true;
    else if (!strcmp(a, "--no-winograd"))
        o->backend.no_winograd = true;
    else if (!strncmp(a, "--cpu=", 6))
        o->backend.cpu = a + 6;
    else if (!strncmp(a, "--features=", 11))
        o->backend.features = a + 11;
    else if (!strncmp(a, "--gpu-arch=", 11))
        o->backend.gpu_arch = a + 11;
    else if (!strncmp(a, "--precision=", 12))
        o->backend.precision = a + 12;
    else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3])
        o->backend.opt_level = a[2] - '0';
    else if (!strncmp(a, "--jobs=", 7) || (!strncmp(a, "-j", 2) && a[2]))
        return parse_jobs(o, a + (a[1] == 'j' ? 2 : 7));
    else if (!strcmp(a, "--no-cache"))
        o->no_cache = true;
    else if (!strcmp(a, "--stats"))
        o->backend.stats = stderr;
    else
        return 1;
    return 0;
}

static int parse_args(int argc, char **argv, Options *o)
{
    o->backend.opt_level = 3;
    o->target = dn_backend_lookup(DEFAULT_TARGET);
    int flag;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--help-ops")) {
            dn_ops_print(stdout);
            exit(0);
        } else if (!strcmp(a, "--version")) {
            printf("dnnc %s (LLVM 19)\n", DNNC_VERSION);
            exit(0);
        } else if (!strcmp(a, "-o") || !strcmp(a, "--model")) {
            if (i + 1 >= argc) return bad_usage("%s needs an argument", a);
            *(!strcmp(a, "-o") ? &o->output : &o->model) = argv[++i];
        } else if (!strncmp(a, "--emit=", 7)) {
            if (parse_emit(o, a + 7)) return 2;
        } else if (!strncmp(a, "--target=", 9)) {
            if (parse_target(o, a + 9)) return 2;
        } else if (!strcmp(a, "--graph=train"))
            o->train_graph = true;
        else if (!strcmp(a, "--graph=infer"))
            o->train_graph = false;
        else if (!strncmp(a, "-fno-", 5)) {
            if (parse_disable(o, a)) return 2;
        } else if ((flag = parse_compile_flag(o, a)) <= 0) {
            if (flag < 0) return 2;
        } else if (a[0] == '-' && a[1])
            return bad_usage("unknown option '%s'", a);
        else if (o->input)
            return bad_usage("more than one input file ('%s')", a);
        else
            o->input = a;
    }
    if (!o->input) return bad_usage("%s", "no input file");
    const char *prec = o->backend.precision;
    if (prec && strcmp(prec, "fp32") && strcmp(prec, "tf32") && strcmp(prec, "bf16") && strcmp(prec, "fp16"))
        return bad_usage("unknown --precision '%s' (fp32, tf32, bf16 or fp16)", prec);
    if (prec && strcmp(prec, "fp32") && strcmp(o->target->name, "cuda") && strcmp(o->target->name, "opencl"))
        return bad_usage("--precision=%s needs a GPU target, cuda or opencl (the cpu computes in fp32)", prec);
    if (o->backend.gpu_arch && strcmp(o->target->name, "cuda"))
        return bad_usage("--gpu-arch=%s needs --target=cuda", o->backend.gpu_arch);
    const char *pa = o->compile.print_after;
    if (pa && strcmp(pa, "all") && !dn_pass_lookup(pa)) return bad_usage("unknown pass '%s' in --print-after", pa);
    static char cache_dir[4096];
    if (!o->no_cache && dn_cache_default_dir(cache_dir, sizeof cache_dir)) o->backend.cache_dir = cache_dir;
    return 0;
}

/* Reads all of 'fd' into a malloc'd string, its length (NULs included) in
 * *lenp; NULL with errno set. */
static char *read_all(int fd, size_t *lenp)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf && len + 1 == cap) {
            char *more = realloc(buf, cap *= 2);
            if (!more) free(buf);
            buf = more;
        }
        if (!buf) {
            errno = ENOMEM;
            return NULL;
        }
        ssize_t got = read(fd, buf + len, cap - len - 1);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            errno = e;
            return NULL;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    buf[len] = 0;
    *lenp = len;
    return buf;
}

/* Reads the input file 'path' whole, its identity into 'st' and its
 * length into *lenp; NULL after saying why.  The open does not wait (a FIFO without a writer would block
 * it) and anything but a regular file is refused before it is read. */
static char *read_input(const char *path, struct stat *st, size_t *lenp)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    char *text = NULL;
    const char *why = NULL;
    if (fd < 0 || fstat(fd, st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st->st_mode))
        why = "not a regular file";
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 || !(text = read_all(fd, lenp)))
        why = strerror(errno);
    if (fd >= 0) close(fd);
    if (why) fprintf(stderr, "dnnc: cannot read '%s': %s\n", path, why);
    return text;
}

/* ---- outputs ------------------------------------------------------------ */

/* The library's default name: the input's base name with .so, in the
 * current folder; malloc'd. */
static char *default_output(const char *input)
{
    const char *base = strrchr(input, '/');
    base = base ? base + 1 : input;
    const char *dot = strrchr(base, '.');
    size_t n = dot ? (size_t)(dot - base) : strlen(base);
    char *out = malloc(n + 4);
    if (!out) dn_die(__FILE__, __LINE__, "out of memory");
    memcpy(out, base, n);
    strcpy(out + n, ".so");
    return out;
}

/* 1, after saying so, when 'path' is the input file ('in', under any of
 * its names or through a link), which writing 'path' would destroy. */
static int is_input(const char *path, const char *input, const struct stat *in)
{
    struct stat st;
    if (stat(path, &st) != 0 || st.st_dev != in->st_dev || st.st_ino != in->st_ino) return 0;
    fprintf(stderr, "dnnc: output '%s' is the input file '%s': refusing to overwrite it\n", path, input);
    return 1;
}

/* 1 when a file this run would write (the -o file, or the library and its
 * header) is the input. */
static int outputs_overwrite_input(const Options *o, const struct stat *in)
{
    if (!o->output) return 0;
    int bad = is_input(o->output, o->input, in);
    if (o->emit == EMIT_LIB) {
        char *h = dn_library_header_path(o->output);
        bad |= is_input(h, o->input, in);
        free(h);
    }
    return bad;
}

/* Starts an --emit output, collected in memory until it is complete. */
static FILE *emit_begin(DnOutput *out)
{
    if (dn_output_open(out) != 0) dn_die(__FILE__, __LINE__, "out of memory");
    return out->f;
}

/* Writes the --emit output 'out' to -o PATH (standard output without -o)
 * when 'st' is DN_OK, else drops it; a failed write is DN_ERR with a
 * diagnostic, PATH as it was. */
static DnStatus emit_end(DnCtx *cx, const Options *o, DnOutput *out, DnStatus st)
{
    if (st != DN_OK) {
        dn_output_discard(out);
        return st;
    }
    if (dn_output_write(out, o->output) == 0) return DN_OK;
    if (o->output && errno == ENXIO)
        dn_error(cx, (DnLoc){0}, "cannot write '%s': %s (no process has it open for reading)", o->output,
                 strerror(errno));
    else if (o->output)
        dn_error(cx, (DnLoc){0}, "cannot write '%s': %s", o->output, strerror(errno));
    else
        dn_error(cx, (DnLoc){0}, "cannot write the standard output: %s", strerror(errno));
    return DN_ERR;
}

/* --emit=code: the target's code, after the check that it has every kernel. */
static DnStatus emit_code(DnCtx *cx, const Options *o, const DnModule *m, FILE *out)
{
    if (dn_backend_check(cx, o->target, m)) return DN_ERR;
    if (!o->target->emit_text) {
        dn_error(cx, (DnLoc){0}, "--emit=code: target '%s' cannot print its code", o->target->name);
        return DN_ERR;
    }
    return o->target->emit_text(cx, m, &o->backend, out);
}

static DnStatus emit_stage(DnCtx *cx, const Options *o, const DnModule *m, FILE *out)
{
    const DnGraph *g = o->train_graph ? m->train : m->infer;
    const DnPlan *p = o->train_graph ? m->train_plan : m->infer_plan;
    if (!g) {
        dn_error(cx, (DnLoc){0}, "--graph=train: '%s' has no training graph (no train section, or --no-train)",
                 m->name);
        return DN_ERR;
    }
    switch (o->emit) {
    case EMIT_IR_OPT: dn_graph_print(g, out); return DN_OK;
    case EMIT_PLAN: dn_plan_print(g, p, out); return DN_OK;
    case EMIT_CODE: return emit_code(cx, o, m, out);
    case EMIT_HEADER: dn_emit_header(m, out); return DN_OK;
    default: DN_UNREACHABLE();
    }
}

/* --emit=ast: a .dnn source's syntax tree. */
static DnStatus emit_ast(DnCtx *cx, const Options *o, const DnInputFormat *fmt, const char *text, DnArena *a)
{
    if (strcmp(fmt->name, "dnn")) {
        dn_error(cx, (DnLoc){0}, "--emit=ast: '%s' is %s, not a .dnn source", o->input, fmt->help);
        return DN_ERR;
    }
    DnAst *ast = dn_parse(cx, o->input, text, a);
    if (!ast || cx->nerr) return DN_ERR;
    DnOutput out;
    dn_ast_print(ast, emit_begin(&out));
    return emit_end(cx, o, &out, DN_OK);
}

/* The verified graph through the pipeline, then printed or built. */
static DnStatus emit_module(DnCtx *cx, const Options *o, const DnGraph *g, DnArena *a)
{
    DnModule m;
    DnCompileOptions copt = o->compile;
    copt.workspace = o->target->workspace; /* the target's kernels' scratch goes in the arena */
    copt.workspace_data = (void *)&o->backend;
    DnStatus st = dn_compile(cx, g, &copt, &m, a);
    if (st == DN_OK && o->emit != EMIT_LIB) {
        DnOutput out;
        FILE *f = emit_begin(&out);
        st = emit_end(cx, o, &out, emit_stage(cx, o, &m, f));
    } else if (st == DN_OK) {
        st = dn_build_library(cx, o->target, &m, &o->backend, NULL, o->output);
    }
    dn_module_free(&m);
    return st;
}

static DnStatus compile(DnCtx *cx, const Options *o, const char *text, DnArena *a)
{
    const DnInputFormat *fmt = dn_input_format(o->input);
    if (o->emit == EMIT_AST) return emit_ast(cx, o, fmt, text, a);
    DnGraph *g = fmt->load(cx, o->input, text, o->model, a);
    if (!g || cx->nerr || dn_verify(cx, g)) return DN_ERR;
    DnStatus st = DN_OK;
    if (o->emit == EMIT_IR) {
        DnOutput out;
        dn_graph_print(g, emit_begin(&out));
        st = emit_end(cx, o, &out, DN_OK);
    } else {
        st = emit_module(cx, o, g, a);
    }
    dn_graph_free(g);
    return st;
}

int main(int argc, char **argv)
{
    Options o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc;
    /* A write beyond the file size limit fails with EFBIG, reported like a
     * full disk, instead of killing dnnc half-way through an output. */
    signal(SIGXFSZ, SIG_IGN);
    char *def = o.emit == EMIT_LIB && !o.output ? default_output(o.input) : NULL;
    if (def) o.output = def;
    struct stat in;
    size_t len = 0;
    char *text = read_input(o.input, &in, &len);
    if (!text || outputs_overwrite_input(&o, &in)) {
        free(text);
        free(def);
        return 1;
    }
    DnCtx cx;
    dn_ctx_init(&cx);
    const char *src = dn_ctx_add_source(&cx, o.input, text);
    DnStatus st = dn_input_check_text(&cx, o.input, text, len); /* a NUL would end the text early */
    free(text);
    DnArena a = {0};
    if (st == DN_OK) st = compile(&cx, &o, src, &a);
    dn_ctx_print_diags(&cx, stderr);
    if (st != DN_OK && cx.nerr == 0) fprintf(stderr, "dnnc: compilation failed\n");
    rc = st == DN_OK && cx.nerr == 0 ? 0 : 1;
    dn_arena_free(&a);
    dn_ctx_free(&cx);
    free(def);
    return rc;
}
