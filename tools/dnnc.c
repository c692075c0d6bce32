/* dnnc.c -- the compiler driver: a readable list of the pipeline's stages.
 *
 *   source --dn_parse--> AST --dn_lower--> graph
 *   graph --clone--> inference graph  --passes--> plan --+
 *         --clone--> training graph   --passes--> plan --+--> backend --> .o --link--> .so (+ .h)
 *
 * Every stage can be printed (--emit, --print-after) and every pass skipped
 * (-fno-NAME), so the effect of each is visible.  Outputs are written to a
 * temporary name and renamed, so a failed compile never destroys an
 * existing library or header.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "passes/passes.h"
#include "frontend/frontend.h"

#define DNNC_VERSION "0.1.0"

typedef enum { EMIT_LIB, EMIT_AST, EMIT_IR, EMIT_IR_OPT, EMIT_PLAN, EMIT_LLVM, EMIT_HEADER } EmitKind;

typedef struct Options {
    const char *input, *output, *model;
    EmitKind emit;
    bool no_train, train_graph, verify_each;
    bool disabled[64];       /* by index in dn_pass_table */
    const char *print_after; /* pass name or "all" */
    const char *passes;      /* explicit pipeline, comma separated */
    DnBackendOptions backend;
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
                 "  --emit=KIND         print a stage to stdout (or to -o PATH) instead of building:\n"
                 "                        ast     the parsed syntax tree\n"
                 "                        ir      the graph as lowered from the source\n"
                 "                        ir-opt  the inference graph after all passes\n"
                 "                                (with --graph=train: the training graph)\n"
                 "                        plan    the memory plan of that graph\n"
                 "                        llvm    the optimized LLVM IR of the whole library\n"
                 "                        header  the generated C header\n"
                 "  --graph=infer|train which graph --emit=ir-opt/plan shows (default infer)\n"
                 "  --passes=A,B,...    run these passes, in this order (the pass that defines the\n"
                 "                      graph, training or inference, runs first if not listed)\n"
                 "  -fno-PASS           skip one optimization pass of the default pipeline\n"
                 "  --print-after=PASS  print each graph to stderr after PASS ('all': after every pass)\n"
                 "  --verify-each       run the IR verifier after every pass (always done at the end)\n"
                 "  --cpu=NAME          LLVM target CPU (default: this machine's, e.g. znver3)\n"
                 "  --features=LIST     LLVM target features (default: this machine's)\n"
                 "  -O0 -O1 -O2 -O3     LLVM optimization level (default -O3)\n"
                 "  --direct-kernels    plain loop-nest kernels only, no GEMM micro-kernels\n"
                 "                      (slower; a reference for A/B runs)\n"
                 "  -h, --help          this text\n"
                 "  --version           print the version\n"
                 "\n"
                 "passes (default pipeline, in order):\n");
    for (int i = 0; i < dn_pass_count; i++) fprintf(out, "  %-16s %s\n", dn_pass_table[i].name, dn_pass_table[i].help);
    fprintf(out, "\nenvironment: DNNC_RUNTIME (runtime archive, default %s), DNNC_CC (C compiler used to link)\n",
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
    static const char *names[] = {"lib", "ast", "ir", "ir-opt", "plan", "llvm", "header"};
    for (int i = 1; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(kind, names[i]) == 0) {
            o->emit = (EmitKind)i;
            return 0;
        }
    return bad_usage("unknown --emit kind '%s' (ast, ir, ir-opt, plan, llvm, header)", kind);
}

static int parse_args(int argc, char **argv, Options *o)
{
    o->backend.opt_level = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--version")) {
            printf("dnnc %s (LLVM 19)\n", DNNC_VERSION);
            exit(0);
        } else if (!strcmp(a, "-o") || !strcmp(a, "--model")) {
            if (i + 1 >= argc) return bad_usage("%s needs an argument", a);
            *(!strcmp(a, "-o") ? &o->output : &o->model) = argv[++i];
        } else if (!strncmp(a, "--emit=", 7)) {
            if (parse_emit(o, a + 7)) return 2;
        } else if (!strcmp(a, "--graph=train"))
            o->train_graph = true;
        else if (!strcmp(a, "--graph=infer"))
            o->train_graph = false;
        else if (!strcmp(a, "--no-train"))
            o->no_train = true;
        else if (!strcmp(a, "--verify-each"))
            o->verify_each = true;
        else if (!strcmp(a, "--direct-kernels"))
            o->backend.direct_kernels = true;
        else if (!strncmp(a, "--passes=", 9))
            o->passes = a + 9;
        else if (!strncmp(a, "--print-after=", 14))
            o->print_after = a + 14;
        else if (!strncmp(a, "--cpu=", 6))
            o->backend.cpu = a + 6;
        else if (!strncmp(a, "--features=", 11))
            o->backend.features = a + 11;
        else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3])
            o->backend.opt_level = a[2] - '0';
        else if (!strncmp(a, "-fno-", 5)) {
            const DnPassInfo *p = dn_pass_lookup(a + 5);
            if (!p) return bad_usage("unknown pass in '%s'", a);
            if (!strcmp(p->name, "training") || !strcmp(p->name, "inference"))
                return bad_usage("'%s': that pass defines its graph and always runs (--no-train drops training)", a);
            o->disabled[p - dn_pass_table] = true;
        } else if (a[0] == '-' && a[1])
            return bad_usage("unknown option '%s'", a);
        else if (o->input)
            return bad_usage("more than one input file ('%s')", a);
        else
            o->input = a;
    }
    if (!o->input) return bad_usage("%s", "no input file");
    if (o->print_after && strcmp(o->print_after, "all") && !dn_pass_lookup(o->print_after))
        return bad_usage("unknown pass '%s' in --print-after", o->print_after);
    return 0;
}

/* Reads a whole file; NULL with errno set on failure. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0) buf = realloc(buf, cap *= 2);
    }
    if (buf) buf[len] = 0;
    if (ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* ---- passes ------------------------------------------------------------- */

static DnStatus run_pass(DnCtx *cx, const Options *o, const DnPassInfo *p, DnGraph *g, bool training)
{
    DnPassCtx pc = {.cx = cx, .training = training};
    DnStatus st = p->fn(&pc, g);
    dn_arena_free(&pc.scratch);
    if (st == DN_OK && o->verify_each) st = dn_verify(cx, g);
    if (st == DN_OK && o->print_after && (!strcmp(o->print_after, "all") || !strcmp(o->print_after, p->name))) {
        fprintf(stderr, "// after %s (%s graph)\n", p->name, training ? "training" : "inference");
        dn_graph_print(g, stderr);
    }
    return st;
}

/* Runs the pipeline (--passes, or the table's order minus -fno-) on 'g'.
 * The pass that makes 'g' the training or the inference graph always runs,
 * first, even when --passes leaves it out. */
static DnStatus run_pipeline(DnCtx *cx, const Options *o, DnGraph *g, bool training)
{
    if (o->passes) {
        char padded[1040];
        snprintf(padded, sizeof padded, ",%s,", o->passes);
        const char *defining = training ? "training" : "inference";
        bool listed = strstr(padded, training ? ",training," : ",inference,") != NULL;
        if (!listed && run_pass(cx, o, dn_pass_lookup(defining), g, training)) return DN_ERR;
        char list[1024];
        snprintf(list, sizeof list, "%s", o->passes);
        for (char *save, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
            const DnPassInfo *p = dn_pass_lookup(name);
            if (!p) {
                dn_error(cx, (DnLoc){0}, "unknown pass '%s' in --passes", name);
                return DN_ERR;
            }
            if (run_pass(cx, o, p, g, training)) return DN_ERR;
        }
    } else {
        for (int i = 0; i < dn_pass_count; i++)
            if (!o->disabled[i] && run_pass(cx, o, &dn_pass_table[i], g, training)) return DN_ERR;
    }
    return dn_verify(cx, g);
}

/* Builds the module: inference graph always, training graph when asked for. */
static DnStatus build_module(DnCtx *cx, const Options *o, DnGraph *g, DnModule *m, DnArena *a)
{
    memset(m, 0, sizeof *m);
    m->name = g->name;
    m->infer = dn_graph_clone(g);
    if (run_pipeline(cx, o, m->infer, false)) return DN_ERR;
    if (g->loss && !o->no_train) {
        m->train = dn_graph_clone(g);
        if (run_pipeline(cx, o, m->train, true)) return DN_ERR;
        m->lr = (float)dn_op_float(&(DnOp){.nattrs = g->optim->nattrs, .attrs = g->optim->attrs}, "lr");
    }
    m->state_graph = m->train ? m->train : m->infer;
    dn_state_layout(m->state_graph, a, &m->state);
    for (int i = 0; i < m->infer->params.len; i++) /* the inference graph's params are a prefix */
        if (i >= m->state_graph->params.len ||
            strcmp(m->infer->params.data[i]->name, m->state_graph->params.data[i]->name))
            dn_die(__FILE__, __LINE__, "inference parameters are not a prefix of the training parameters");
    void *ws_data = (void *)&o->backend; /* the workspace each LLVM kernel takes depends on the options */
    m->infer_plan = dn_plan_memory_ws(m->infer, &m->state, dn_backend_llvm.workspace, ws_data, a);
    if (m->train) m->train_plan = dn_plan_memory_ws(m->train, &m->state, dn_backend_llvm.workspace, ws_data, a);
    return DN_OK;
}

/* ---- outputs ------------------------------------------------------------ */

/* Derives "dir/name.h" from "dir/name.so" (or appends .h). */
static char *header_path(const char *so)
{
    size_t n = strlen(so);
    char *h = malloc(n + 3);
    if (n > 3 && !strcmp(so + n - 3, ".so")) n -= 3;
    memcpy(h, so, n);
    strcpy(h + n, ".h");
    return h;
}

static char *default_output(const char *input)
{
    const char *base = strrchr(input, '/');
    base = base ? base + 1 : input;
    const char *dot = strrchr(base, '.');
    size_t n = dot ? (size_t)(dot - base) : strlen(base);
    char *out = malloc(n + 4);
    memcpy(out, base, n);
    strcpy(out + n, ".so");
    return out;
}

/* Writes the header through a temporary file and a rename. */
static DnStatus write_header(DnCtx *cx, const DnModule *m, const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        dn_error(cx, (DnLoc){0}, "cannot write '%s': %s", tmp, strerror(errno));
        return DN_ERR;
    }
    dn_emit_header(m, f);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        dn_error(cx, (DnLoc){0}, "cannot write '%s': %s", path, strerror(errno));
        unlink(tmp);
        return DN_ERR;
    }
    return DN_OK;
}

static DnStatus build_library(DnCtx *cx, const DnModule *m, const Options *o, const char *out)
{
    char obj[] = "/tmp/dnnc-XXXXXX.o";
    int fd = mkstemps(obj, 2);
    if (fd < 0) {
        dn_error(cx, (DnLoc){0}, "cannot create a temporary object file: %s", strerror(errno));
        return DN_ERR;
    }
    close(fd);
    const char *rt = getenv("DNNC_RUNTIME") ? getenv("DNNC_RUNTIME") : DNNC_RUNTIME_LIB;
    DnStatus st = dn_backend_llvm.emit_object(cx, m, &o->backend, obj);
    if (st == DN_OK) st = dn_link_shared(cx, obj, rt, out);
    unlink(obj);
    if (st == DN_OK) {
        char *h = header_path(out);
        st = write_header(cx, m, h);
        free(h);
    }
    return st;
}

/* Opens -o PATH for --emit output (stdout by default). */
static FILE *emit_stream(const Options *o)
{
    if (!o->output) return stdout;
    FILE *f = fopen(o->output, "w");
    if (!f) fprintf(stderr, "dnnc: cannot write '%s': %s\n", o->output, strerror(errno));
    return f;
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
    case EMIT_LLVM: return dn_backend_llvm.emit_text(cx, m, &o->backend, out);
    case EMIT_HEADER: dn_emit_header(m, out); return DN_OK;
    default: DN_UNREACHABLE();
    }
}

static DnStatus compile(DnCtx *cx, const Options *o, const char *text, DnArena *a)
{
    const DnInputFormat *fmt = dn_input_format(o->input);
    if (o->emit == EMIT_AST) {
        if (strcmp(fmt->name, "dnn")) {
            dn_error(cx, (DnLoc){0}, "--emit=ast: '%s' is %s, not a .dnn source", o->input, fmt->help);
            return DN_ERR;
        }
        DnAst *ast = dn_parse(cx, o->input, text, a);
        if (!ast || cx->nerr) return DN_ERR;
        FILE *out = emit_stream(o);
        if (!out) return DN_ERR;
        dn_ast_print(ast, out);
        return out == stdout || fclose(out) == 0 ? DN_OK : DN_ERR;
    }
    DnGraph *g = fmt->load(cx, o->input, text, o->model, a);
    if (!g || cx->nerr || dn_verify(cx, g)) return DN_ERR;
    DnStatus st = DN_OK;
    if (o->emit == EMIT_IR) {
        FILE *out = emit_stream(o);
        if (!out) return DN_ERR;
        dn_graph_print(g, out);
        if (out != stdout) fclose(out);
    } else {
        DnModule m;
        st = build_module(cx, o, g, &m, a);
        if (st == DN_OK && o->emit != EMIT_LIB) {
            FILE *out = emit_stream(o);
            st = out ? emit_stage(cx, o, &m, out) : DN_ERR;
            if (out && out != stdout) fclose(out);
        } else if (st == DN_OK) {
            char *def = o->output ? NULL : default_output(o->input);
            st = build_library(cx, &m, o, o->output ? o->output : def);
            free(def);
        }
        if (m.infer) dn_graph_free(m.infer);
        if (m.train) dn_graph_free(m.train);
    }
    dn_graph_free(g);
    return st;
}

int main(int argc, char **argv)
{
    Options o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc;
    char *text = read_file(o.input);
    if (!text) {
        fprintf(stderr, "dnnc: cannot read '%s': %s\n", o.input, strerror(errno));
        return 1;
    }
    DnCtx cx;
    dn_ctx_init(&cx);
    const char *src = dn_ctx_add_source(&cx, o.input, text);
    free(text);
    DnArena a = {0};
    DnStatus st = compile(&cx, &o, src, &a);
    dn_ctx_print_diags(&cx, stderr);
    if (st != DN_OK && cx.nerr == 0) fprintf(stderr, "dnnc: compilation failed\n");
    rc = st == DN_OK && cx.nerr == 0 ? 0 : 1;
    dn_arena_free(&a);
    dn_ctx_free(&cx);
    return rc;
}
