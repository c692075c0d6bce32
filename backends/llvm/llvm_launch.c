/* llvm_launch.c -- the CPU backend's hooks on the host layer: each op
 * becomes a kernel, run from the entry function on the calling thread or
 * the runtime's pool (dn_host_call_kernel).
 *
 * A kernel is two functions: the generator (dn_llvm_kernels, kernels.c)
 * fills a body
 *     void <op>.<hash>(ptr c, i64 begin, i64 end, i64 n, ptr p0, ... [, ptr ws, ptr slice])
 * in a module of its own (a unit, llvm_units.c: identical bodies are one),
 * whose operand pointers carry noalias/nonnull/align attributes (the facts
 * dn_host_launch_fill read from the memory plan; a pointer that is an
 * earlier one, in place, is read from that one's parameter); and a
 * wrapper in the host module
 *     void kN_op(ptr c, i64 begin, i64 end, i32 worker)
 * (the dnrt_kernel_fn) computes the pointers (dn_host_launch_ptrs) and
 * calls the body.  When the plan holds the op's workspace
 * (llvm_workspace.c), the body takes two more pointers: the workspace's
 * shared part and the calling worker's slice.  A generator may split its
 * op into phases (DnKernel.phase): a kernel each (wrapper kN_op.P for
 * phase P > 0), called one after the other at the op's place.
 */
#include "llvm_internal.h"

/* Adds nonnull and noalias to 'c', and nonnull, align 64 and noalias (as
 * the plan allows) to the pointer parameters of 'body' (parameter 4 + i
 * for pointer i). */
static void mark_pointers(DnHost *H, LLVMValueRef body, const DnLaunch *l)
{
    dn_host_add_attr(H, body, 1, "nonnull", 0);
    dn_host_add_attr(H, body, 1, "noalias", 0);
    for (int i = 0; i < l->nptrs; i++) {
        unsigned idx = 5 + (unsigned)i; /* attribute index = param index + 1 */
        if (l->ptr[i].noalias) dn_host_add_attr(H, body, idx, "noalias", 0);
        dn_host_add_attr(H, body, idx, "nonnull", 0);
        if (l->ptr[i].align64) dn_host_add_attr(H, body, idx, "align", 64);
    }
}

/* Builds the wrapper  void name(ptr c, i64 begin, i64 end, i32 worker)
 * that computes the pointers of 'l' and calls 'body'; with a workspace
 * 'ws' (or NULL), also the address of its shared part and of this worker's
 * slice (worker 0's + worker * stride; null for a part the kernel does not
 * use). */
static LLVMValueRef build_wrapper(DnHost *H, const char *name, LLVMValueRef body, LLVMTypeRef body_t, const DnLaunch *l,
                                  const DnOpWorkspace *ws)
{
    LLVMValueRef fn = LLVMAddFunction(H->mod, name, H->kernel_fn_t);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    dn_host_add_attr(H, fn, 1, "nonnull", 0);
    dn_host_add_attr(H, fn, 1, "noalias", 0);
    LLVMPositionBuilderAtEnd(H->b, LLVMAppendBasicBlockInContext(H->ctx, fn, "entry"));
    LLVMValueRef c = LLVMGetParam(fn, 0);
    LLVMValueRef nptr = LLVMBuildStructGEP2(H->b, H->call_t, c, DN_CALL_N, "");
    LLVMValueRef args[6 + DN_LAUNCH_MAX_PTRS];
    args[0] = c, args[1] = LLVMGetParam(fn, 1), args[2] = LLVMGetParam(fn, 2);
    LLVMValueRef n = LLVMBuildLoad2(H->b, H->i64, nptr, "n");
    args[3] = dn_host_kernel_n(H, l, c, n);
    dn_host_launch_ptrs(H, l, c, n, args + 4);
    int np = l->nptrs;
    if (ws) {
        args[4 + np] = ws->shared.kind ? dn_host_loc_addr(H, l->g, ws->shared, c, n, "ws") : LLVMConstNull(H->ptr);
        args[5 + np] = LLVMConstNull(H->ptr);
        if (ws->slice.kind) {
            LLVMValueRef w = LLVMBuildSExt(H->b, LLVMGetParam(fn, 3), H->i64, "worker");
            LLVMValueRef off =
                LLVMBuildNSWMul(H->b, w, LLVMConstInt(H->i64, (unsigned long long)ws->slice.stride, 1), "");
            LLVMValueRef base = dn_host_loc_addr(H, l->g, ws->slice, c, n, "");
            args[5 + np] = LLVMBuildInBoundsGEP2(H->b, H->i8, base, &off, 1, "slice");
        }
    }
    LLVMBuildCall2(H->b, body_t, body, args, (unsigned)(4 + np + (ws ? 2 : 0)), "");
    LLVMBuildRetVoid(H->b);
    return fn;
}

/* The body's type: (ptr c, i64 begin, i64 end, i64 n, ptr operand..., [2 x ptr workspace]). */
static LLVMTypeRef body_type(DnHost *H, const DnLaunch *l, int nws)
{
    LLVMTypeRef pt[6 + DN_LAUNCH_MAX_PTRS] = {H->ptr, H->i64, H->i64, H->i64};
    for (int i = 0; i < l->nptrs + nws; i++) pt[4 + i] = H->ptr;
    return LLVMFunctionType(H->void_t, pt, (unsigned)(4 + l->nptrs + nws), 0);
}

LLVMValueRef dn_llvm_add_body(DnHost *H, const char *name, const DnLaunch *l, int nws, LLVMTypeRef *body_t)
{
    *body_t = body_type(H, l, nws);
    LLVMValueRef body = LLVMAddFunction(H->mod, name, *body_t);
    dn_host_add_attr(H, body, (unsigned)LLVMAttributeFunctionIndex, "nounwind", 0);
    mark_pointers(H, body, l);
    for (int i = 0; i < nws; i++) { /* the plan keeps both parts apart from every value live at this op */
        dn_host_add_attr(H, body, 5 + (unsigned)(l->nptrs + i), "noalias", 0);
        dn_host_add_attr(H, body, 5 + (unsigned)(l->nptrs + i), "align", 64);
    }
    return body;
}

/* The declaration of body 'sym' (a unit's) in the host module. */
static LLVMValueRef declare_body(DnHost *H, const char *sym, const DnLaunch *l, int nws, LLVMTypeRef *body_t)
{
    *body_t = body_type(H, l, nws);
    LLVMValueRef f = LLVMGetNamedFunction(H->mod, sym);
    if (f) return f;
    f = LLVMAddFunction(H->mod, sym, *body_t);
    LLVMSetVisibility(f, LLVMHiddenVisibility);
    dn_host_add_attr(H, f, (unsigned)LLVMAttributeFunctionIndex, "nounwind", 0);
    return f;
}

/* Pointer i of the body: the parameter of the first of l's pointers that
 * is the same buffer (an op in place), so that the optimizer knows they
 * are equal, as it would if it saw the addresses. */
static LLVMValueRef ptr_param(LLVMValueRef body, const DnLaunch *l, int i)
{
    int j = l->ptr[i].same_as >= 0 ? l->ptr[i].same_as : i;
    return LLVMGetParam(body, 4 + (unsigned)j);
}

/* Emits phase 'phase' of the kernel of l->op; returns its wrapper (the
 * dnrt_kernel_fn), the iteration count in *par_n, *par_b and the op's
 * phase count in *nphase, or NULL with a diagnostic. */
static LLVMValueRef emit_kernel(DnHost *H, const DnLaunch *l, int phase, int64_t *par_n, int64_t *par_b, int *nphase)
{
    const DnOp *op = l->op;
    DnKernelGen gen = dn_llvm_kernels[op->kind];
    const char *opname = dn_op_info[op->kind].name;
    if (!gen) {
        dn_error(H->cx, op->loc, "llvm backend: no kernel for op '%s'", opname);
        return NULL;
    }
    char name[96];
    if (phase)
        snprintf(name, sizeof name, "k%d_%s.%d", l->seq, opname, phase);
    else
        snprintf(name, sizeof name, "k%d_%s", l->seq, opname);
    DnOpWorkspace ws = dn_llvm_op_workspace(H, l->plan, op, l->at);
    int nws = ws.in_plan ? 2 : 0, np = l->nptrs;
    LLVMValueRef body;
    DnUnit *u = dn_unit_begin(H, l, nws, &body);
    DnHost *U = dn_unit_host(u);

    /* an op that treats every (n, t) position alike is generated as the same op over a batch of n * t */
    const DnOp *kop = l->seq_form == DN_SEQ_ROWS ? dn_op_seq_rows(op, &H->cx->arena) : op;
    DnKernel k = {.L = U,
                  .g = l->g,
                  .plan = l->plan,
                  .op = kop,
                  .fn = body,
                  .par_n = 0,
                  .par_b = 1,
                  .scratch = ws.need,
                  .phase = phase,
                  .nphase = 1};
    k.c = LLVMGetParam(body, 0), k.begin = LLVMGetParam(body, 1), k.end = LLVMGetParam(body, 2);
    k.n = LLVMGetParam(body, 3);
    for (int i = 0; i < op->nin; i++) k.in[i] = ptr_param(body, l, i);
    for (int i = 0; i < op->nout; i++) k.out[i] = ptr_param(body, l, op->nin + i);
    if (nws && ws.need.shared) k.ws_shared = LLVMGetParam(body, 4 + (unsigned)np);
    if (nws && ws.need.slice) k.ws_slice = LLVMGetParam(body, 5 + (unsigned)np);
    LLVMPositionBuilderAtEnd(U->b, LLVMAppendBasicBlockInContext(U->ctx, body, "entry"));
    if (l->seq_form == DN_SEQ_AWARE) k.t = dn_call_field(&k, DN_CALL_T);
    gen(&k);
    LLVMBuildRetVoid(U->b); /* generators leave the builder at the end of their last block */
    dn_llvm_check_scratch(&k);
    *par_n = k.par_n, *par_b = k.par_b, *nphase = k.nphase;
    const char *sym = dn_unit_end(H, u, body, opname); /* 'u' may be gone: an equal body was there */
    LLVMTypeRef body_t;
    LLVMValueRef decl = declare_body(H, sym, l, nws, &body_t);
    return build_wrapper(H, name, decl, body_t, l, nws ? &ws : NULL);
}

/* The launch hook: the kernel of each phase, then its call at the op's
 * place in the entry. */
static DnStatus llvm_launch(DnHost *H, const DnLaunch *l)
{
    int nphase = 1;
    for (int phase = 0; phase < nphase; phase++) {
        LLVMBasicBlockRef at = LLVMGetInsertBlock(H->b);
        int64_t pn, pb;
        LLVMValueRef kfn = emit_kernel(H, l, phase, &pn, &pb, &nphase);
        if (!kfn) return DN_ERR;
        LLVMPositionBuilderAtEnd(H->b, at);
        dn_host_call_kernel(H, l, kfn, pn, pb);
    }
    return DN_OK;
}

/* Declares dnrt_parallel_for first, so that the module lists it before the
 * entry functions and kernels that call it. */
static DnStatus llvm_begin_module(DnHost *H)
{
    LLVMTypeRef t;
    dn_host_parallel_for(H, &t);
    return DN_OK;
}

const DnHostHooks dn_llvm_hooks = {llvm_begin_module, llvm_launch, NULL, false, dn_units_dispose};
