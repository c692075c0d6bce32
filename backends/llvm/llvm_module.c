/* llvm_module.c -- the LLVM backend's driver: one LLVM module per DnModule.
 *
 * For each graph (inference, and training when compiled in) it emits one
 * kernel per live op through the generator table (kernels.c) and an entry
 * function that runs them in order through dnrt_parallel_for; then the
 * descriptor and typed wrappers (llvm_desc.c); then verifies, optimizes and
 * writes an object file or the IR text (llvm_target.c).
 *
 * A kernel is two functions: the generator fills an always-inline body
 *     void kN_op.body(ptr c, i64 begin, i64 end, i64 n, ptr p0, ...)
 * whose operand pointers carry noalias/nonnull/align attributes (from the
 * memory plan), and a wrapper  void kN_op(ptr c, i64 begin, i64 end,
 * i32 worker) (the dnrt_kernel_fn) computes the pointers from the plan and calls it.
 * After inlining, the noalias facts survive as scoped alias metadata.
 */
#include <stdlib.h>

#include "llvm_driver.h"

static const DnLoc noloc = {0};

/* ---- buffers ------------------------------------------------------------- */

/* Byte range of a value's buffer as  [s_n*n + s_b, + z_n*n + z_b). */
typedef struct Range {
    DnBufKind kind;
    int index;
    int64_t s_n, s_b, z_n, z_b;
    bool written;
} Range;

static Range value_range(const DnPlan *plan, const DnValue *v, bool written)
{
    DnBufLoc l = dn_plan_locate(plan, v);
    return (Range){l.kind, l.index, l.at_n, l.at_b, l.span_n, l.span_b, written};
}

static bool overlap_at(const Range *a, const Range *b, int64_t n)
{
    int64_t as = a->s_n * n + a->s_b, ae = as + a->z_n * n + a->z_b;
    int64_t bs = b->s_n * n + b->s_b, be = bs + b->z_n * n + b->z_b;
    return as < be && bs < ae && ae > as && be > bs;
}

/* Whether two buffers can share a byte for some batch size n >= 1.  Both
 * conditions of overlap are linear in n, so it suffices to test n = 1, a
 * large n and the points around where the two conditions cross. */
static bool may_overlap(const Range *a, const Range *b)
{
    if (a->kind != b->kind) return false;
    if (a->kind == DN_BUF_INPUT || a->kind == DN_BUF_OUTPUT) return a->index == b->index;
    if (a->kind != DN_BUF_ARENA && a->kind != DN_BUF_STATE) return true;
    int64_t p1 = a->s_n + a->z_n - b->s_n, q1 = a->s_b + a->z_b - b->s_b; /* ae - bs */
    int64_t p2 = b->s_n + b->z_n - a->s_n, q2 = b->s_b + b->z_b - a->s_b; /* be - as */
    int64_t cand[6] = {1, 2, (int64_t)1 << 30, 1, 1, 1};
    if (p1 != p2) {
        int64_t x = (q2 - q1) / (p1 - p2);
        cand[3] = x - 1, cand[4] = x, cand[5] = x + 1;
    }
    for (int i = 0; i < 6; i++)
        if (cand[i] >= 1 && overlap_at(a, b, cand[i])) return true;
    return false;
}

/* Position in c->inputs (descriptor order: the inference graph's inputs,
 * then the training graph's train-only ones) of input 'idx' of 'g'. */
static int input_slot(DnLlvm *L, const DnGraph *g, int idx)
{
    const DnGraph *inf = L->m->infer;
    if (g == inf) return idx;
    const DnValue *v = g->inputs.data[idx];
    int slot = inf->inputs.len;
    for (int i = 0; i < inf->inputs.len; i++)
        if (!strcmp(inf->inputs.data[i]->name, v->name)) return i;
    for (int i = 0; i < idx; i++) slot += g->inputs.data[i]->train_only;
    if (!v->train_only) dn_die(__FILE__, __LINE__, "llvm backend: training input '%s' not in the model", v->name);
    return slot;
}

/* Emits the address  buffer + at_n * n + at_b  of location 'l' (views
 * resolved; see dn_plan_locate) at the builder's position in a function
 * whose call pointer is 'c' and batch size 'n'.  'what' names the value in
 * the IR. */
static LLVMValueRef loc_ptr(DnLlvm *L, const DnGraph *g, DnBufLoc l, LLVMValueRef c, LLVMValueRef n, const char *what)
{
    if (l.kind == DN_BUF_INPUT) l.index = input_slot(L, g, l.index);
    LLVMBuilderRef bd = L->b;
    int field = l.kind == DN_BUF_ARENA   ? DN_CALL_ARENA
                : l.kind == DN_BUF_STATE ? DN_CALL_STATE
                : l.kind == DN_BUF_INPUT ? DN_CALL_INPUTS
                                         : DN_CALL_OUTPUTS;
    LLVMValueRef fp = LLVMBuildStructGEP2(bd, L->call_t, c, (unsigned)field, "");
    LLVMValueRef base = LLVMBuildLoad2(bd, L->ptr, fp, "");
    if (l.kind == DN_BUF_INPUT || l.kind == DN_BUF_OUTPUT) {
        LLVMValueRef idx = LLVMConstInt(L->i64, (unsigned long long)l.index, 0);
        LLVMValueRef slot = LLVMBuildInBoundsGEP2(bd, L->ptr, base, &idx, 1, "");
        base = LLVMBuildLoad2(bd, L->ptr, slot, l.at_n || l.at_b ? "" : what);
        if (!l.at_n && !l.at_b) return base;
    }
    LLVMValueRef off = LLVMConstInt(L->i64, (unsigned long long)l.at_b, 1);
    if (l.at_n)
        off = LLVMBuildNSWAdd(bd, LLVMBuildNSWMul(bd, n, LLVMConstInt(L->i64, (unsigned long long)l.at_n, 1), ""), off,
                              "");
    return LLVMBuildInBoundsGEP2(bd, L->i8, base, &off, 1, "");
}

/* Emits the address of 'v's buffer (see loc_ptr). */
static LLVMValueRef buf_ptr(DnLlvm *L, const DnGraph *g, const DnPlan *plan, const DnValue *v, LLVMValueRef c,
                            LLVMValueRef n)
{
    DnBufLoc l = dn_plan_locate(plan, v);
    if (l.kind == DN_BUF_NONE)
        dn_die(__FILE__, __LINE__, "llvm backend: value %%%d (%s) has no buffer in the plan", v->id,
               v->name ? v->name : "?");
    return loc_ptr(L, g, l, c, n, v->name ? v->name : "");
}

static void add_attr(DnLlvm *L, LLVMValueRef fn, unsigned idx, const char *name, uint64_t val)
{
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(L->ctx, kind, val));
}

/* ---- kernels -------------------------------------------------------------- */

/* Operand and result values of 'op' in pointer-parameter order. */
static int op_values(const DnOp *op, const DnValue **vals, bool *written)
{
    int np = 0;
    bool side = dn_op_info[op->kind].flags & DN_OPF_SIDE_EFFECT;
    DN_ASSERT(op->nin <= DN_KERNEL_MAX_IN && op->nout <= DN_KERNEL_MAX_OUT);
    for (int i = 0; i < op->nin; i++) vals[np] = op->in[i], written[np++] = side;
    for (int i = 0; i < op->nout; i++) vals[np] = op->out[i], written[np++] = true;
    return np;
}

/* Adds nonnull, align 64 and (where no conflicting buffer exists) noalias to
 * the pointer parameters of 'body' (parameter 4 + i for pointer i). */
static void mark_pointers(DnLlvm *L, LLVMValueRef body, const DnPlan *plan, const DnValue **vals, const bool *written,
                          int np)
{
    Range r[DN_KERNEL_MAX_IN + DN_KERNEL_MAX_OUT];
    for (int i = 0; i < np; i++) r[i] = value_range(plan, vals[i], written[i]);
    add_attr(L, body, 1, "nonnull", 0);
    add_attr(L, body, 1, "noalias", 0);
    for (int i = 0; i < np; i++) {
        unsigned idx = 5 + (unsigned)i; /* attribute index = param index + 1 */
        bool alone = true;
        for (int j = 0; j < np; j++)
            if (j != i && (r[i].written || r[j].written) && may_overlap(&r[i], &r[j])) alone = false;
        if (alone) add_attr(L, body, idx, "noalias", 0);
        add_attr(L, body, idx, "nonnull", 0);
        bool al = (r[i].kind == DN_BUF_ARENA && r[i].s_n % 64 == 0 && r[i].s_b % 64 == 0) ||
                  (r[i].kind == DN_BUF_STATE && r[i].s_b % 64 == 0);
        if (al) add_attr(L, body, idx, "align", 64);
    }
}

/* Builds the wrapper  void name(ptr c, i64 begin, i64 end, i32 worker)  that computes
 * the operand pointers of 'op' and calls 'body'; with a workspace 'ws' (or
 * NULL), also the address of its shared part and of this worker's slice
 * (worker 0's + worker * stride; null for a part the kernel does not use). */
static LLVMValueRef build_wrapper(DnLlvm *L, const char *name, LLVMValueRef body, LLVMTypeRef body_t, const DnGraph *g,
                                  const DnPlan *plan, const DnValue **vals, int np, const DnOpWorkspace *ws)
{
    LLVMValueRef fn = LLVMAddFunction(L->mod, name, L->kernel_fn_t);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    add_attr(L, fn, 1, "nonnull", 0);
    add_attr(L, fn, 1, "noalias", 0);
    LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->ctx, fn, "entry"));
    LLVMValueRef c = LLVMGetParam(fn, 0);
    LLVMValueRef nptr = LLVMBuildStructGEP2(L->b, L->call_t, c, DN_CALL_N, "");
    LLVMValueRef args[6 + DN_KERNEL_MAX_IN + DN_KERNEL_MAX_OUT];
    args[0] = c, args[1] = LLVMGetParam(fn, 1), args[2] = LLVMGetParam(fn, 2);
    args[3] = LLVMBuildLoad2(L->b, L->i64, nptr, "n");
    for (int i = 0; i < np; i++) args[4 + i] = buf_ptr(L, g, plan, vals[i], c, args[3]);
    if (ws) {
        args[4 + np] = ws->shared.kind ? loc_ptr(L, g, ws->shared, c, args[3], "ws") : LLVMConstNull(L->ptr);
        args[5 + np] = LLVMConstNull(L->ptr);
        if (ws->slice.kind) {
            LLVMValueRef w = LLVMBuildSExt(L->b, LLVMGetParam(fn, 3), L->i64, "worker");
            LLVMValueRef off =
                LLVMBuildNSWMul(L->b, w, LLVMConstInt(L->i64, (unsigned long long)ws->slice.stride, 1), "");
            args[5 + np] =
                LLVMBuildInBoundsGEP2(L->b, L->i8, loc_ptr(L, g, ws->slice, c, args[3], ""), &off, 1, "slice");
        }
    }
    LLVMBuildCall2(L->b, body_t, body, args, (unsigned)(4 + np + (ws ? 2 : 0)), "");
    LLVMBuildRetVoid(L->b);
    return fn;
}

/* Emits the kernel of 'op' (position 'at' in g->ops); returns its wrapper
 * (the dnrt_kernel_fn) and the iteration count in *par_n, *par_b, or NULL
 * with a diagnostic.  With a workspace in the plan, the body takes two
 * more pointers after the operands: the workspace's shared part and the
 * calling worker's slice. */
static LLVMValueRef emit_kernel(DnLlvm *L, const DnGraph *g, const DnPlan *plan, const DnOp *op, int at, int64_t *par_n,
                                int64_t *par_b)
{
    DnKernelGen gen = dn_llvm_kernels[op->kind];
    const char *opname = dn_op_info[op->kind].name;
    if (!gen) {
        dn_error(L->cx, op->loc, "llvm backend: no kernel for op '%s'", opname);
        return NULL;
    }
    const DnValue *vals[DN_KERNEL_MAX_IN + DN_KERNEL_MAX_OUT];
    bool written[DN_KERNEL_MAX_IN + DN_KERNEL_MAX_OUT];
    int np = op_values(op, vals, written);
    DnOpWorkspace ws = dn_llvm_op_workspace(L, plan, op, at);
    int nws = ws.in_plan ? 2 : 0;
    LLVMTypeRef pt[6 + DN_KERNEL_MAX_IN + DN_KERNEL_MAX_OUT] = {L->ptr, L->i64, L->i64, L->i64};
    for (int i = 0; i < np; i++) pt[4 + i] = L->ptr;
    if (nws) pt[4 + np] = L->ptr, pt[5 + np] = L->ptr;
    LLVMTypeRef body_t = LLVMFunctionType(L->void_t, pt, (unsigned)(4 + np + nws), 0);
    char name[96], bname[112];
    snprintf(name, sizeof name, "k%d_%s", L->nkernels++, opname);
    snprintf(bname, sizeof bname, "%s.body", name);
    LLVMValueRef body = LLVMAddFunction(L->mod, bname, body_t);
    LLVMSetLinkage(body, LLVMInternalLinkage);
    add_attr(L, body, (unsigned)LLVMAttributeFunctionIndex, "alwaysinline", 0);
    add_attr(L, body, (unsigned)LLVMAttributeFunctionIndex, "nounwind", 0);
    mark_pointers(L, body, plan, vals, written, np);
    for (int i = 0; i < nws; i++) { /* the plan keeps both parts apart from every value live at this op */
        add_attr(L, body, 5 + (unsigned)(np + i), "noalias", 0);
        add_attr(L, body, 5 + (unsigned)(np + i), "align", 64);
    }

    DnKernel k = {.L = L, .g = g, .plan = plan, .op = op, .fn = body, .par_n = 0, .par_b = 1, .scratch = ws.need};
    k.c = LLVMGetParam(body, 0), k.begin = LLVMGetParam(body, 1), k.end = LLVMGetParam(body, 2);
    k.n = LLVMGetParam(body, 3);
    for (int i = 0; i < op->nin; i++) k.in[i] = LLVMGetParam(body, 4 + (unsigned)i);
    for (int i = 0; i < op->nout; i++) k.out[i] = LLVMGetParam(body, 4 + (unsigned)(op->nin + i));
    if (nws && ws.need.shared) k.ws_shared = LLVMGetParam(body, 4 + (unsigned)np);
    if (nws && ws.need.slice) k.ws_slice = LLVMGetParam(body, 5 + (unsigned)np);
    LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->ctx, body, "entry"));
    gen(&k);
    LLVMBuildRetVoid(L->b); /* generators leave the builder at the end of their last block */
    dn_llvm_check_scratch(&k);
    *par_n = k.par_n, *par_b = k.par_b;
    return build_wrapper(L, name, body, body_t, g, plan, vals, np, nws ? &ws : NULL);
}

/* ---- entry functions -------------------------------------------------------- */

static LLVMValueRef runtime_fn(DnLlvm *L, const char *name, LLVMTypeRef t)
{
    LLVMValueRef f = LLVMGetNamedFunction(L->mod, name);
    if (!f) {
        f = LLVMAddFunction(L->mod, name, t);
        LLVMSetVisibility(f, LLVMHiddenVisibility);
    }
    return f;
}

/* Emits the entry function 'name' of graph 'g': every live op's kernel, in
 * order.  Returns NULL when some op has no kernel (diagnostics reported). */
/* Kernels whose work is below this many units (FLOPs + bytes / 4) run on
 * the calling thread: waking the pool costs microseconds, more than they
 * take (LeNet at batch 1 was slower on 2 threads than on 1 without it). */
#define SERIAL_GRAIN (INT64_C(1) << 17)

/* Calls kernel 'kfn' of 'op' over its pn*n + pb iterations: directly (as
 * worker 0) when its work is small or it has one iteration, else through
 * dnrt_parallel_for.  Returns the block the entry continues in. */
static LLVMBasicBlockRef call_kernel(DnLlvm *L, LLVMValueRef entry, LLVMValueRef c, const DnOp *op, LLVMValueRef kfn,
                                     int64_t pn, int64_t pb, LLVMTypeRef pf_t, LLVMValueRef pf)
{
    DnCost cost;
    dn_op_cost(op, &cost);
    int64_t wn = cost.flops_n + cost.bytes_n / 4, wb = cost.flops_b + cost.bytes_b / 4;
    LLVMValueRef cnt = LLVMConstInt(L->i64, (unsigned long long)pb, 1), serial, n = NULL;
    if (pn || wn) n = LLVMBuildLoad2(L->b, L->i64, LLVMBuildStructGEP2(L->b, L->call_t, c, DN_CALL_N, ""), "n");
    if (pn)
        cnt = LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, n, LLVMConstInt(L->i64, (unsigned long long)pn, 1), ""), cnt,
                              "count");
    if (pn == 0 && pb == 1) {
        serial = LLVMConstInt(L->i1, 1, 0);
    } else if (wn == 0) {
        serial = LLVMConstInt(L->i1, wb < SERIAL_GRAIN, 0);
    } else { /* work grows with n even when the iteration count does not (conv2d_bwd_filter) */
        LLVMValueRef work =
            LLVMBuildAdd(L->b, LLVMBuildMul(L->b, n, LLVMConstInt(L->i64, (unsigned long long)wn, 1), ""),
                         LLVMConstInt(L->i64, (unsigned long long)wb, 1), "work");
        serial = LLVMBuildICmp(L->b, LLVMIntSLT, work, LLVMConstInt(L->i64, SERIAL_GRAIN, 1), "small");
    }
    LLVMBasicBlockRef one = LLVMAppendBasicBlockInContext(L->ctx, entry, "serial");
    LLVMBasicBlockRef many = LLVMAppendBasicBlockInContext(L->ctx, entry, "parallel");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(L->ctx, entry, "next");
    LLVMBuildCondBr(L->b, serial, one, many);
    LLVMPositionBuilderAtEnd(L->b, one);
    LLVMValueRef kargs[4] = {c, LLVMConstInt(L->i64, 0, 0), cnt, LLVMConstInt(L->i32, 0, 0)};
    LLVMBuildCall2(L->b, L->kernel_fn_t, kfn, kargs, 4, "");
    LLVMBuildBr(L->b, next);
    LLVMPositionBuilderAtEnd(L->b, many);
    LLVMValueRef pargs[3] = {c, kfn, cnt};
    LLVMBuildCall2(L->b, pf_t, pf, pargs, 3, "");
    LLVMBuildBr(L->b, next);
    LLVMPositionBuilderAtEnd(L->b, next);
    return next;
}

static LLVMValueRef emit_entry(DnLlvm *L, const DnGraph *g, const DnPlan *plan, const char *name)
{
    LLVMTypeRef entry_t = LLVMFunctionType(L->void_t, &L->ptr, 1, 0);
    LLVMTypeRef pf_args[3] = {L->ptr, L->ptr, L->i64};
    LLVMTypeRef pf_t = LLVMFunctionType(L->void_t, pf_args, 3, 0);
    LLVMValueRef pf = runtime_fn(L, "dnrt_parallel_for", pf_t);
    LLVMValueRef entry = LLVMAddFunction(L->mod, name, entry_t);
    LLVMSetLinkage(entry, LLVMInternalLinkage);
    add_attr(L, entry, 1, "nonnull", 0);
    LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(L->ctx, entry, "entry");
    LLVMValueRef c = LLVMGetParam(entry, 0);
    bool ok = true;
    for (int i = 0; i < g->ops.len; i++) {
        const DnOp *op = g->ops.data[i];
        if (op->dead) continue;
        int64_t pn, pb;
        LLVMValueRef kfn = emit_kernel(L, g, plan, op, i, &pn, &pb);
        if (!kfn) {
            ok = false;
            continue;
        }
        LLVMPositionBuilderAtEnd(L->b, bb);
        bb = call_kernel(L, entry, c, op, kfn, pn, pb, pf_t, pf);
    }
    LLVMPositionBuilderAtEnd(L->b, bb);
    LLVMBuildRetVoid(L->b);
    return ok ? entry : NULL;
}

/* ---- the module ---------------------------------------------------------- */

static void llvm_init(DnLlvm *L, DnCtx *cx, const DnModule *m)
{
    memset(L, 0, sizeof *L);
    L->cx = cx, L->m = m;
    L->ctx = LLVMContextCreate();
    L->mod = LLVMModuleCreateWithNameInContext(m->name, L->ctx);
    L->b = LLVMCreateBuilderInContext(L->ctx);
    L->i1 = LLVMInt1TypeInContext(L->ctx);
    L->i8 = LLVMInt8TypeInContext(L->ctx);
    L->i32 = LLVMInt32TypeInContext(L->ctx);
    L->i64 = LLVMInt64TypeInContext(L->ctx);
    L->f32 = LLVMFloatTypeInContext(L->ctx);
    L->f64 = LLVMDoubleTypeInContext(L->ctx);
    L->ptr = LLVMPointerTypeInContext(L->ctx, 0);
    L->void_t = LLVMVoidTypeInContext(L->ctx);
    L->call_t = dn_llvm_call_type(L->ctx);
    LLVMTypeRef kargs[4] = {L->ptr, L->i64, L->i64, L->i32};
    L->kernel_fn_t = LLVMFunctionType(L->void_t, kargs, 4, 0);
}

static void llvm_dispose(DnLlvm *L)
{
    LLVMDisposeBuilder(L->b);
    LLVMDisposeModule(L->mod);
    LLVMContextDispose(L->ctx);
}

/* Builds, verifies and optimizes the whole module for 'm'.  On success the
 * caller owns *L and *tm. */
static DnStatus build_module(DnLlvm *L, DnCtx *cx, const DnModule *m, const DnBackendOptions *o,
                             LLVMTargetMachineRef *tm)
{
    llvm_init(L, cx, m);
    L->opt = o;
    char name[256];
    snprintf(name, sizeof name, "%s_infer_entry", m->name);
    LLVMValueRef infer = emit_entry(L, m->infer, m->infer_plan, name);
    LLVMValueRef train = NULL;
    if (m->train) {
        snprintf(name, sizeof name, "%s_train_entry", m->name);
        train = emit_entry(L, m->train, m->train_plan, name);
    }
    if (!infer || (m->train && !train)) return DN_ERR;
    LLVMValueRef desc = dn_llvm_emit_descriptor(L, infer, train);
    dn_llvm_emit_wrappers(L, desc);
    *tm = dn_llvm_target_machine(cx, o);
    if (!*tm) return DN_ERR;
    if (dn_llvm_optimize(cx, L->mod, *tm, o ? o->opt_level : 3) != DN_OK) return DN_ERR;
    return DN_OK;
}

static DnStatus llvm_emit_object(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, const char *obj_path)
{
    DnLlvm L;
    LLVMTargetMachineRef tm = NULL;
    DnStatus st = build_module(&L, cx, m, o, &tm);
    if (st == DN_OK) {
        char *msg = NULL;
        if (LLVMTargetMachineEmitToFile(tm, L.mod, (char *)obj_path, LLVMObjectFile, &msg)) {
            dn_error(cx, noloc, "llvm backend: cannot write '%s': %s", obj_path, msg);
            st = DN_ERR;
        }
        LLVMDisposeMessage(msg);
    }
    if (tm) LLVMDisposeTargetMachine(tm);
    llvm_dispose(&L);
    return st;
}

static DnStatus llvm_emit_text(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, FILE *out)
{
    DnLlvm L;
    LLVMTargetMachineRef tm = NULL;
    DnStatus st = build_module(&L, cx, m, o, &tm);
    if (st == DN_OK) {
        char *ir = LLVMPrintModuleToString(L.mod);
        fputs(ir, out);
        LLVMDisposeMessage(ir);
    }
    if (tm) LLVMDisposeTargetMachine(tm);
    llvm_dispose(&L);
    return st;
}

static bool llvm_supports_op(const DnOp *op) { return dn_llvm_kernels[op->kind] != NULL; }

const DnBackend dn_backend_llvm = {"llvm", llvm_emit_object, llvm_emit_text, llvm_supports_op, dn_llvm_workspace};
