/* host_module.c -- one LLVM module per DnModule: setup, then in order the
 * backend's begin_module hook, the entry function of the inference graph
 * and of the training graph (host_entry.c, one launch per op), the
 * end_module hook, the descriptor and the typed wrappers (host_desc.c);
 * then verification, optimization and the object file or IR text
 * (host_target.c).
 */
#include "host.h"

/* Contracts: host.h. */

LLVMValueRef dn_host_runtime_fn(DnHost *H, const char *name, LLVMTypeRef t)
{
    LLVMValueRef f = LLVMGetNamedFunction(H->mod, name);
    if (!f) {
        f = LLVMAddFunction(H->mod, name, t);
        LLVMSetVisibility(f, LLVMHiddenVisibility);
    }
    return f;
}

void dn_host_add_attr(DnHost *H, LLVMValueRef fn, unsigned idx, const char *name, uint64_t val)
{
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(H->ctx, kind, val));
}

/* ---- setup ------------------------------------------------------------------ */

void dn_host_init(DnHost *H, DnCtx *cx, const DnModule *m, const DnBackendOptions *o, const DnHostHooks *hooks)
{
    memset(H, 0, sizeof *H);
    H->cx = cx, H->m = m, H->opt = o, H->hooks = hooks;
    H->ctx = LLVMContextCreate();
    H->mod = LLVMModuleCreateWithNameInContext(m->name, H->ctx);
    H->b = LLVMCreateBuilderInContext(H->ctx);
    H->i1 = LLVMInt1TypeInContext(H->ctx);
    H->i8 = LLVMInt8TypeInContext(H->ctx);
    H->i32 = LLVMInt32TypeInContext(H->ctx);
    H->i64 = LLVMInt64TypeInContext(H->ctx);
    H->f32 = LLVMFloatTypeInContext(H->ctx);
    H->f64 = LLVMDoubleTypeInContext(H->ctx);
    H->ptr = LLVMPointerTypeInContext(H->ctx, 0);
    H->void_t = LLVMVoidTypeInContext(H->ctx);
    H->call_t = dn_host_call_type(H->ctx);
    LLVMTypeRef kargs[4] = {H->ptr, H->i64, H->i64, H->i32};
    H->kernel_fn_t = LLVMFunctionType(H->void_t, kargs, 4, 0);
    H->vec_regs = dn_host_vector_registers(o);
}

void dn_host_dispose(DnHost *H)
{
    LLVMDisposeBuilder(H->b);
    LLVMDisposeModule(H->mod);
    LLVMContextDispose(H->ctx);
}

/* ---- the module ------------------------------------------------------------- */

/* The entry functions of 'm' into *infer and *train (NULL without training). */
static DnStatus emit_entries(DnHost *H, LLVMValueRef *infer, LLVMValueRef *train)
{
    const DnModule *m = H->m;
    char name[256];
    snprintf(name, sizeof name, "%s_infer_entry", m->name);
    *infer = dn_host_emit_entry(H, m->infer, m->infer_plan, name);
    *train = NULL;
    if (m->train) {
        snprintf(name, sizeof name, "%s_train_entry", m->name);
        *train = dn_host_emit_entry(H, m->train, m->train_plan, name);
    }
    return *infer && (!m->train || *train) ? DN_OK : DN_ERR;
}

/* Builds, verifies and optimizes the whole module in *H (set up by the
 * caller).  On success the caller owns *tm. */
static DnStatus build_module(DnHost *H, LLVMTargetMachineRef *tm)
{
    const DnHostHooks *hk = H->hooks;
    LLVMValueRef infer, train;
    if (hk->begin_module && hk->begin_module(H) != DN_OK) return DN_ERR;
    if (emit_entries(H, &infer, &train) != DN_OK) return DN_ERR;
    if (hk->end_module && hk->end_module(H) != DN_OK) return DN_ERR;
    LLVMValueRef desc = dn_host_emit_descriptor(H, infer, train);
    dn_host_emit_wrappers(H, desc);
    *tm = dn_host_target_machine(H->cx, H->opt);
    if (!*tm) return DN_ERR;
    return dn_host_optimize(H->cx, H->mod, *tm, H->opt ? H->opt->opt_level : 3);
}

DnStatus dn_host_emit_with(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, const DnHostHooks *hooks,
                           DnStatus (*write)(DnHost *H, void *arg), void *arg)
{
    DnHost H;
    LLVMTargetMachineRef tm = NULL;
    dn_host_init(&H, cx, m, o, hooks);
    DnStatus st = build_module(&H, &tm);
    H.tm = tm;
    if (st == DN_OK) st = write(&H, arg);
    if (tm) LLVMDisposeTargetMachine(tm);
    if (hooks->dispose) hooks->dispose(&H);
    dn_host_dispose(&H);
    return st;
}

/* The module, optimized, into a new temporary object file or as IR text. */
static DnStatus write_object(DnHost *H, void *objs)
{
    const char *path = dn_objects_add_temp(H->cx, objs);
    return path ? dn_host_write_object(H->cx, H->mod, H->tm, path) : DN_ERR;
}

static DnStatus write_text(DnHost *H, void *out)
{
    dn_host_write_text(H->mod, out);
    return DN_OK;
}

DnStatus dn_host_emit_object(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, const DnHostHooks *hooks,
                             DnObjects *objs)
{
    return dn_host_emit_with(cx, m, o, hooks, write_object, objs);
}

DnStatus dn_host_emit_text(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, const DnHostHooks *hooks, FILE *out)
{
    return dn_host_emit_with(cx, m, o, hooks, write_text, out);
}
