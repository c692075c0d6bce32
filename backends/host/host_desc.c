/* host_desc.c -- what a generated library exports besides its code:
 * the dnrt_model_desc constant <model>_descriptor (+ alias dnnc_descriptor)
 * and the typed functions of <model>.h as thin wrappers over the runtime's
 * dnrt_session_* functions (hidden symbols of libdnnrt.a).
 *
 * The LLVM struct types mirror dnrt.h field by field; with natural
 * alignment they have the C layout (tests/unit/test_llvm_kernels.c checks
 * every offset against offsetof).  ORDER dnrt_tensor_desc, dnrt_model_desc.
 */
#include "host.h"

#include "dnrt.h"

/* ORDER DN_DTYPE, DnParamKind, DnInitKind: the descriptor stores them as is. */
_Static_assert((int)DN_DTYPE_F32 == DNRT_F32 && (int)DN_DTYPE_I32 == DNRT_I32 && (int)DN_DTYPE_I64 == DNRT_I64,
               "DnDType and dnrt_dtype differ");
_Static_assert((int)DN_PARAM_WEIGHT == DNRT_STATE_WEIGHT && (int)DN_PARAM_BUFFER == DNRT_STATE_BUFFER &&
                   (int)DN_PARAM_OPTIM == DNRT_STATE_OPTIM && (int)DN_PARAM_CACHE == DNRT_STATE_CACHE,
               "DnParamKind and dnrt_state_kind differ");
_Static_assert((int)DN_INIT_ZEROS == DNRT_INIT_ZEROS && (int)DN_INIT_ONES == DNRT_INIT_ONES &&
                   (int)DN_INIT_UNIFORM == DNRT_INIT_UNIFORM && (int)DN_INIT_NORMAL == DNRT_INIT_NORMAL,
               "DnInitKind and dnrt_init_kind differ");

/* ---- types ---------------------------------------------------------------- */

LLVMTypeRef dn_host_call_type(LLVMContextRef ctx)
{
    LLVMTypeRef i64 = LLVMInt64TypeInContext(ctx), ptr = LLVMPointerTypeInContext(ctx, 0);
    LLVMTypeRef f[] = {i64, ptr, ptr, ptr, ptr, ptr, i64, i64, LLVMFloatTypeInContext(ctx), ptr, i64};
    return LLVMStructTypeInContext(ctx, f, sizeof f / sizeof f[0], 0);
}

LLVMTypeRef dn_host_tensor_desc_type(LLVMContextRef ctx)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(ctx), i64 = LLVMInt64TypeInContext(ctx);
    LLVMTypeRef f32 = LLVMFloatTypeInContext(ctx), ptr = LLVMPointerTypeInContext(ctx, 0);
    LLVMTypeRef f[] = {ptr, i32, i32, LLVMArrayType2(i64, 6), i64, i32, i32, i32, f32, f32, i32, i64, i64,
                       i32, i64, i64};
    return LLVMStructTypeInContext(ctx, f, sizeof f / sizeof f[0], 0);
}

LLVMTypeRef dn_host_model_desc_type(LLVMContextRef ctx)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(ctx), i64 = LLVMInt64TypeInContext(ctx);
    LLVMTypeRef f32 = LLVMFloatTypeInContext(ctx), ptr = LLVMPointerTypeInContext(ctx, 0);
    LLVMTypeRef f[] = {i32, ptr, i32, ptr, i32, ptr, i32, ptr, i64, i64, i64,
                       ptr, i32, i64, i64, ptr, f32, ptr, i64, i64, ptr, i64};
    return LLVMStructTypeInContext(ctx, f, sizeof f / sizeof f[0], 0);
}

/* ---- constants --------------------------------------------------------------- */

static LLVMValueRef ci32(DnHost *H, int64_t v) { return LLVMConstInt(H->i32, (unsigned long long)v, 1); }
static LLVMValueRef ci64(DnHost *H, int64_t v) { return LLVMConstInt(H->i64, (unsigned long long)v, 1); }

static LLVMValueRef cstring(DnHost *H, const char *s)
{
    LLVMValueRef init = LLVMConstStringInContext(H->ctx, s, (unsigned)strlen(s), 0);
    LLVMValueRef g = LLVMAddGlobal(H->mod, LLVMTypeOf(init), ".str");
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    return g;
}

/* The value range of an input: [lo, hi] (checked when lo < hi), and an
 * extra accepted value when has_extra. */
typedef struct Range {
    int64_t lo, hi;
    bool has_extra;
    int64_t extra;
} Range;

static const Range no_range = {1, 0, false, 0};

/* One dnrt_tensor_desc.  'p' (state tensors) and 'offset' may be NULL/0. */
static LLVMValueRef tensor_desc(DnHost *H, const char *name, DnDType dt, const DnShape *s, const DnParam *p,
                                int64_t offset, bool train_only, Range rg)
{
    LLVMValueRef dims[6];
    for (int i = 0; i < 6; i++)
        dims[i] = ci64(H, i >= s->rank ? 0 : DN_DIM_IS_SEQ(s->dim[i]) ? DNRT_DIM_SEQ : s->dim[i]);
    LLVMValueRef f[16] = {
        cstring(H, name),
        ci32(H, dt),
        ci32(H, s->rank),
        LLVMConstArray2(H->i64, dims, 6),
        ci64(H, offset),
        ci32(H, p ? (int)p->kind : 0),
        ci32(H, p ? p->trainable : 0),
        ci32(H, p ? (int)p->init.kind : 0),
        LLVMConstReal(H->f32, p ? p->init.a : 0),
        LLVMConstReal(H->f32, p ? p->init.b : 0),
        ci32(H, train_only),
        ci64(H, rg.lo),
        ci64(H, rg.hi),
        ci32(H, rg.has_extra),
        ci64(H, rg.has_extra ? rg.extra : 0),
        ci64(H, p ? p->init.zero_row : 0),
    };
    return LLVMConstNamedStruct(dn_host_tensor_desc_type(H->ctx), f, 16);
}

/* An input's descriptor, with the value range its readers impose (in the
 * training graph, which reads every input, else the inference graph). */
static LLVMValueRef input_desc(DnHost *H, const DnValue *v)
{
    const DnGraph *g = H->m->train ? H->m->train : H->m->infer;
    const DnValue *gv = NULL;
    for (int i = 0; i < g->inputs.len; i++)
        if (!strcmp(g->inputs.data[i]->name, v->name)) gv = g->inputs.data[i];
    Range rg = no_range;
    if (gv && !dn_input_range(g, gv, &rg.lo, &rg.hi)) rg.lo = 1, rg.hi = 0;
    if (gv && rg.lo < rg.hi) rg.has_extra = dn_input_extra(g, gv, &rg.extra);
    return tensor_desc(H, v->name, v->dtype, &v->shape, NULL, 0, v->train_only, rg);
}

/* A private constant array of 'n' tensor descriptors (null when n == 0). */
static LLVMValueRef desc_array(DnHost *H, LLVMValueRef *elems, int n, const char *name)
{
    if (n == 0) return LLVMConstNull(H->ptr);
    LLVMTypeRef td = dn_host_tensor_desc_type(H->ctx);
    LLVMValueRef init = LLVMConstArray2(td, elems, (uint64_t)n);
    LLVMValueRef g = LLVMAddGlobal(H->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    return g;
}

/* Inputs in descriptor order: the inference graph's, then the training
 * graph's train-only ones.  Fills up to 'max' entries; returns the count. */
static int module_inputs(const DnModule *m, const DnValue **out, int max)
{
    int n = 0;
    for (int i = 0; i < m->infer->inputs.len && n < max; i++) out[n++] = m->infer->inputs.data[i];
    if (m->train)
        for (int i = 0; i < m->train->inputs.len && n < max; i++)
            if (m->train->inputs.data[i]->train_only) out[n++] = m->train->inputs.data[i];
    return n;
}

#define MAX_IO 256

/* Adds <model>_descriptor and the alias dnnc_descriptor. */
LLVMValueRef dn_host_emit_descriptor(DnHost *H, LLVMValueRef infer_entry, LLVMValueRef train_entry)
{
    const DnModule *m = H->m;
    const DnValue *ins[MAX_IO];
    int nin = module_inputs(m, ins, MAX_IO);
    LLVMValueRef in_d[MAX_IO], out_d[MAX_IO];
    for (int i = 0; i < nin; i++) in_d[i] = input_desc(H, ins[i]);
    int nout = m->infer->outputs.len;
    DN_ASSERT(nout <= MAX_IO);
    for (int i = 0; i < nout; i++) {
        const DnValue *v = m->infer->outputs.data[i];
        out_d[i] = tensor_desc(H, m->infer->output_names.data[i], v->dtype, &v->shape, NULL, 0, false, no_range);
    }
    const DnGraph *sg = m->state_graph;
    int nst = sg->params.len;
    LLVMValueRef *st_d = dn_arena_alloc(&H->cx->arena, sizeof(LLVMValueRef) * (size_t)(nst + 1));
    for (int i = 0; i < nst; i++) {
        const DnParam *p = sg->params.data[i];
        st_d[i] = tensor_desc(H, p->name, p->dtype, &p->shape, p, m->state.offset[i], false, no_range);
    }
    LLVMValueRef api = LLVMGetNamedGlobal(H->mod, "dnrt_api_v1");
    if (!api) {
        api = LLVMAddGlobal(H->mod, H->i8, "dnrt_api_v1");
        LLVMSetVisibility(api, LLVMHiddenVisibility);
        LLVMSetGlobalConstant(api, 1);
    }
    LLVMValueRef f[22] = {
        ci32(H, DNRT_ABI_VERSION),
        cstring(H, m->name),
        ci32(H, nin),
        desc_array(H, in_d, nin, "desc.inputs"),
        ci32(H, nout),
        desc_array(H, out_d, nout, "desc.outputs"),
        ci32(H, nst),
        desc_array(H, st_d, nst, "desc.state"),
        ci64(H, m->state.bytes),
        ci64(H, m->infer_plan->arena_n),
        ci64(H, m->infer_plan->arena_b),
        infer_entry,
        ci32(H, m->train != NULL),
        ci64(H, m->train ? m->train_plan->arena_n : 0),
        ci64(H, m->train ? m->train_plan->arena_b : 0),
        train_entry ? train_entry : LLVMConstNull(H->ptr),
        LLVMConstReal(H->f32, m->lr),
        api,
        ci64(H, m->infer_plan->arena_t),
        ci64(H, m->train ? m->train_plan->arena_t : 0),
        H->gpu_program ? H->gpu_program : LLVMConstNull(H->ptr),
        ci64(H, dn_graph_seq_bound(m->infer)),
    };
    LLVMTypeRef dt = dn_host_model_desc_type(H->ctx);
    char name[256];
    snprintf(name, sizeof name, "%s_descriptor", m->name);
    LLVMValueRef g = LLVMAddGlobal(H->mod, dt, name);
    LLVMSetInitializer(g, LLVMConstNamedStruct(dt, f, 22));
    LLVMSetGlobalConstant(g, 1);
    LLVMSetAlignment(g, 8);
    LLVMAddAlias2(H->mod, dt, 0, g, "dnnc_descriptor");
    return g;
}

/* ---- typed wrappers ---------------------------------------------------------- */

/* Declares the hidden runtime function 'name'. */
static LLVMValueRef rt_fn(DnHost *H, const char *name, LLVMTypeRef ret, LLVMTypeRef *args, int n, LLVMTypeRef *ft)
{
    *ft = LLVMFunctionType(ret, args, (unsigned)n, 0);
    return dn_host_runtime_fn(H, name, *ft);
}

/* Adds the exported function <model>_<suffix> and positions the builder in it. */
static LLVMValueRef export_fn(DnHost *H, const char *suffix, LLVMTypeRef ret, LLVMTypeRef *args, int n)
{
    char name[256];
    snprintf(name, sizeof name, "%s_%s", H->m->name, suffix);
    LLVMValueRef f = LLVMAddFunction(H->mod, name, LLVMFunctionType(ret, args, (unsigned)n, 0));
    LLVMPositionBuilderAtEnd(H->b, LLVMAppendBasicBlockInContext(H->ctx, f, "entry"));
    return f;
}

/* <model>_<suffix>(params...) { return rt(params...); }  with the same
 * parameter list, except that 'prefix' (the descriptor) may be prepended. */
static void forward_fn(DnHost *H, const char *suffix, const char *rt, LLVMTypeRef ret, LLVMTypeRef *args, int n,
                       LLVMValueRef prefix)
{
    LLVMTypeRef rargs[8], ft;
    LLVMValueRef vals[8];
    int nr = 0;
    if (prefix) rargs[nr++] = H->ptr;
    for (int i = 0; i < n; i++) rargs[nr++] = args[i];
    LLVMValueRef callee = rt_fn(H, rt, ret, rargs, nr, &ft);
    LLVMValueRef f = export_fn(H, suffix, ret, args, n);
    nr = 0;
    if (prefix) vals[nr++] = prefix;
    for (int i = 0; i < n; i++) vals[nr++] = LLVMGetParam(f, (unsigned)i);
    LLVMValueRef r = LLVMBuildCall2(H->b, ft, callee, vals, (unsigned)nr, "");
    if (ret == H->void_t)
        LLVMBuildRetVoid(H->b);
    else
        LLVMBuildRet(H->b, r);
}

/* Stores params [first, first+n) of 'f' into a fresh stack array of pointers. */
static LLVMValueRef pack_ptrs(DnHost *H, LLVMValueRef f, int first, int n)
{
    LLVMValueRef arr =
        LLVMBuildArrayAlloca(H->b, H->ptr, LLVMConstInt(H->i64, (unsigned long long)(n ? n : 1), 0), "ptrs");
    for (int i = 0; i < n; i++) {
        LLVMValueRef idx = LLVMConstInt(H->i64, (unsigned long long)i, 0);
        LLVMBuildStore(H->b, LLVMGetParam(f, (unsigned)(first + i)),
                       LLVMBuildInBoundsGEP2(H->b, H->ptr, arr, &idx, 1, ""));
    }
    return arr;
}

/* M_infer(m, n, [t,] inputs..., outputs..., err) and, with training,
 * M_train_step(m, n, [t,] all inputs..., loss, err): t, the sequence
 * length, only for a model with the sequence axis T (else 0 is passed on). */
static void run_fns(DnHost *H)
{
    const DnModule *m = H->m;
    const DnValue *ins[MAX_IO];
    int nall = module_inputs(m, ins, MAX_IO), nin = m->infer->inputs.len, nout = m->infer->outputs.len;
    int st = dn_graph_seq_bound(m->infer) ? 1 : 0, p0 = 2 + st; /* the first pointer parameter */
    LLVMTypeRef args[2 * MAX_IO + 5], ft;
    DN_ASSERT(nin + nout + 4 <= 2 * MAX_IO);
    for (int i = 0; i < 2 * MAX_IO + 5; i++) args[i] = H->ptr;
    args[1] = H->i64, args[2] = st ? H->i64 : H->ptr;
    LLVMTypeRef rargs[6] = {H->ptr, H->i64, H->i64, H->ptr, H->ptr, H->ptr};
    LLVMValueRef rt = rt_fn(H, "dnrt_session_infer_seq", H->i32, rargs, 6, &ft);
    LLVMValueRef f = export_fn(H, "infer", H->i32, args, nin + nout + 3 + st);
    LLVMValueRef t = st ? LLVMGetParam(f, 2) : LLVMConstInt(H->i64, 0, 0);
    LLVMValueRef vals[6] = {LLVMGetParam(f, 0),
                            LLVMGetParam(f, 1),
                            t,
                            pack_ptrs(H, f, p0, nin),
                            pack_ptrs(H, f, p0 + nin, nout),
                            LLVMGetParam(f, (unsigned)(p0 + nin + nout))};
    LLVMBuildRet(H->b, LLVMBuildCall2(H->b, ft, rt, vals, 6, ""));
    if (!m->train) return;
    rt = rt_fn(H, "dnrt_session_train_step_seq", H->i32, rargs, 6, &ft);
    f = export_fn(H, "train_step", H->i32, args, nall + 4 + st);
    t = st ? LLVMGetParam(f, 2) : LLVMConstInt(H->i64, 0, 0);
    LLVMValueRef tv[6] = {LLVMGetParam(f, 0),
                          LLVMGetParam(f, 1),
                          t,
                          pack_ptrs(H, f, p0, nall),
                          LLVMGetParam(f, (unsigned)(p0 + nall)),
                          LLVMGetParam(f, (unsigned)(p0 + 1 + nall))};
    LLVMBuildRet(H->b, LLVMBuildCall2(H->b, ft, rt, tv, 6, ""));
}

/* The exported typed functions; see header.c for their C declarations. */
void dn_host_emit_wrappers(DnHost *H, LLVMValueRef desc)
{
    LLVMTypeRef p = H->ptr, pp[3] = {p, p, p}, pf[2] = {p, H->f32}, pfp[3] = {p, H->f32, p};
    forward_fn(H, "create", "dnrt_session_create", p, pp, 2, desc);
    forward_fn(H, "destroy", "dnrt_session_destroy", H->void_t, pp, 1, NULL);
    forward_fn(H, "load", "dnrt_session_load", H->i32, pp, 3, NULL);
    forward_fn(H, "save", "dnrt_session_save", H->i32, pp, 3, NULL);
    run_fns(H);
    if (H->m->train) {
        forward_fn(H, "set_lr", "dnrt_session_set_lr", H->void_t, pf, 2, NULL);
        forward_fn(H, "set_learning_rate", "dnrt_session_set_learning_rate", H->i32, pfp, 3, NULL);
        forward_fn(H, "get_lr", "dnrt_session_get_lr", H->f32, pp, 1, NULL);
        forward_fn(H, "step", "dnrt_session_get_step", H->i64, pp, 1, NULL);
    }
    export_fn(H, "describe", p, NULL, 0);
    LLVMBuildRet(H->b, desc);
}
