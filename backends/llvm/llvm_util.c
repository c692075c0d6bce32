/* llvm_util.c -- building blocks the kernel generators share: constants,
 * dims, call-struct fields, counted loops, mutable scalars, element access,
 * arithmetic shorthands, math calls and if-blocks (llvm_internal.h).
 *
 * Everything emits at the builder's current position inside k->fn.
 * Floating-point arithmetic carries only 'contract' and 'reassoc' flags:
 * results may differ by fp32 reassociation, never by NaN/Inf assumptions.
 */
#include "llvm_internal.h"

#define FP_FLAGS (LLVMFastMathAllowContract | LLVMFastMathAllowReassoc)

/* Constants. */
LLVMValueRef dn_i64(DnKernel *k, int64_t v) { return LLVMConstInt(k->L->i64, (unsigned long long)v, 1); }
LLVMValueRef dn_i32(DnKernel *k, int32_t v) { return LLVMConstInt(k->L->i32, (unsigned long long)(int64_t)v, 1); }
LLVMValueRef dn_f32(DnKernel *k, double v) { return LLVMConstReal(k->L->f32, v); }

/* Size of 'axis' of 'v': k->n for the symbolic batch axis, else a constant. */
LLVMValueRef dn_dim(DnKernel *k, const DnValue *v, int axis)
{
    DN_ASSERT(axis >= 0 && axis < v->shape.rank);
    if (v->shape.dim[axis] == DN_DIM_N) return k->n;
    if (DN_DIM_IS_SEQ(v->shape.dim[axis])) {
        DN_ASSERT(k->t);
        return k->t;
    }
    return dn_i64(k, v->shape.dim[axis]);
}

/* Product of every dim of 'v', N included (1 for a scalar). */
LLVMValueRef dn_numel(DnKernel *k, const DnValue *v)
{
    LLVMValueRef s = dn_i64(k, dn_shape_numel_static(&v->shape));
    if (dn_shape_has_n(&v->shape)) s = dn_mul(k, s, k->n);
    return s;
}

/* Loads field 'field' (DN_CALL_*) of the dnrt_call that k->c points to. */
LLVMValueRef dn_call_field(DnKernel *k, int field)
{
    DnLlvm *L = k->L;
    LLVMTypeRef ft = LLVMStructGetTypeAtIndex(L->call_t, (unsigned)field);
    LLVMValueRef p = LLVMBuildStructGEP2(L->b, L->call_t, k->c, (unsigned)field, "c.field");
    LLVMValueRef v = LLVMBuildLoad2(L->b, ft, p, "c.val");
    LLVMSetAlignment(v, 8 - 4 * (ft == L->f32));
    return v;
}

/* ---- loops ---------------------------------------------------------------- */

/* Opens  for (i = lo; i < hi; i++):  the builder is left in the body. */
DnLoop dn_loop_begin(DnKernel *k, LLVMValueRef lo, LLVMValueRef hi, const char *name)
{
    LLVMBuilderRef b = k->L->b;
    DnLoop l;
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(b);
    l.head = LLVMAppendBasicBlockInContext(k->L->ctx, k->fn, "loop.head");
    l.body = LLVMAppendBasicBlockInContext(k->L->ctx, k->fn, "loop.body");
    l.exit = LLVMAppendBasicBlockInContext(k->L->ctx, k->fn, "loop.exit");
    LLVMBuildBr(b, l.head);
    LLVMPositionBuilderAtEnd(b, l.head);
    l.phi = LLVMBuildPhi(b, k->L->i64, name);
    LLVMAddIncoming(l.phi, &lo, &pre, 1);
    l.i = l.phi;
    LLVMValueRef cond = LLVMBuildICmp(b, LLVMIntSLT, l.phi, hi, "loop.cond");
    LLVMBuildCondBr(b, cond, l.body, l.exit);
    LLVMPositionBuilderAtEnd(b, l.body);
    return l;
}

/* Closes the loop opened by dn_loop_begin; the builder continues after it. */
void dn_loop_end(DnKernel *k, DnLoop *l)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef next = LLVMBuildAdd(b, l->phi, dn_i64(k, 1), "loop.next");
    LLVMSetNSW(next, 1);
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(b);
    LLVMBuildBr(b, l->head);
    LLVMAddIncoming(l->phi, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(b, l->exit);
}

/* ---- mutable scalars -------------------------------------------------------- */

/* An alloca of 't' at the top of k->fn's entry block, initialised to 'init'
 * (may be NULL) at the current position. */
LLVMValueRef dn_var(DnKernel *k, LLVMTypeRef t, LLVMValueRef init, const char *name)
{
    LLVMBuilderRef tmp = LLVMCreateBuilderInContext(k->L->ctx);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(k->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(tmp, first);
    else
        LLVMPositionBuilderAtEnd(tmp, entry);
    LLVMValueRef var = LLVMBuildAlloca(tmp, t, name);
    LLVMDisposeBuilder(tmp);
    if (init) dn_set(k, var, init);
    return var;
}

LLVMValueRef dn_get(DnKernel *k, LLVMValueRef var, LLVMTypeRef t) { return LLVMBuildLoad2(k->L->b, t, var, "v"); }

void dn_set(DnKernel *k, LLVMValueRef var, LLVMValueRef v) { LLVMBuildStore(k->L->b, v, var); }

/* ---- element access -------------------------------------------------------- */

static LLVMValueRef elem_ptr(DnKernel *k, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef idx)
{
    return LLVMBuildInBoundsGEP2(k->L->b, t, base, &idx, 1, "p");
}

LLVMValueRef dn_load_f32(DnKernel *k, LLVMValueRef base, LLVMValueRef idx)
{
    LLVMValueRef v = LLVMBuildLoad2(k->L->b, k->L->f32, elem_ptr(k, k->L->f32, base, idx), "x");
    LLVMSetAlignment(v, 4);
    return v;
}

void dn_store_f32(DnKernel *k, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v)
{
    LLVMValueRef s = LLVMBuildStore(k->L->b, v, elem_ptr(k, k->L->f32, base, idx));
    LLVMSetAlignment(s, 4);
}

LLVMValueRef dn_load_i32(DnKernel *k, LLVMValueRef base, LLVMValueRef idx)
{
    LLVMValueRef v = LLVMBuildLoad2(k->L->b, k->L->i32, elem_ptr(k, k->L->i32, base, idx), "l");
    LLVMSetAlignment(v, 4);
    return v;
}

/* ---- arithmetic -------------------------------------------------------------- */

LLVMValueRef dn_add(DnKernel *k, LLVMValueRef a, LLVMValueRef b)
{
    if (LLVMIsAConstantInt(b) && LLVMConstIntGetSExtValue(b) == 0) return a;
    if (LLVMIsAConstantInt(a) && LLVMConstIntGetSExtValue(a) == 0) return b;
    return LLVMBuildNSWAdd(k->L->b, a, b, "");
}

LLVMValueRef dn_mul(DnKernel *k, LLVMValueRef a, LLVMValueRef b)
{
    if (LLVMIsAConstantInt(b) && LLVMConstIntGetSExtValue(b) == 1) return a;
    if (LLVMIsAConstantInt(a) && LLVMConstIntGetSExtValue(a) == 1) return b;
    return LLVMBuildNSWMul(k->L->b, a, b, "");
}

LLVMValueRef dn_imin(DnKernel *k, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(k->L->b, LLVMBuildICmp(k->L->b, LLVMIntSLT, a, b, ""), a, b, "");
}

static LLVMValueRef fp_flags(LLVMValueRef v)
{
    if (LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v)) LLVMSetFastMathFlags(v, FP_FLAGS);
    return v;
}

LLVMValueRef dn_fadd(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return fp_flags(LLVMBuildFAdd(k->L->b, a, b, "")); }
LLVMValueRef dn_fmul(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return fp_flags(LLVMBuildFMul(k->L->b, a, b, "")); }

/* Declares (once) and returns the function 'name' of type f32(f32...). */
static LLVMValueRef f32_fn(DnKernel *k, const char *name, int nargs, LLVMTypeRef *fty)
{
    LLVMTypeRef args[3] = {k->L->f32, k->L->f32, k->L->f32};
    *fty = LLVMFunctionType(k->L->f32, args, (unsigned)nargs, 0);
    LLVMValueRef f = LLVMGetNamedFunction(k->L->mod, name);
    if (!f) f = LLVMAddFunction(k->L->mod, name, *fty);
    return f;
}

LLVMValueRef dn_fma(DnKernel *k, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
    LLVMTypeRef fty;
    LLVMValueRef f = f32_fn(k, "llvm.fma.f32", 3, &fty);
    LLVMValueRef args[3] = {a, b, c};
    return LLVMBuildCall2(k->L->b, fty, f, args, 3, "");
}

LLVMValueRef dn_fmax(DnKernel *k, LLVMValueRef a, LLVMValueRef b)
{
    LLVMTypeRef fty;
    LLVMValueRef f = f32_fn(k, "llvm.maximum.f32", 2, &fty);
    LLVMValueRef args[2] = {a, b};
    return LLVMBuildCall2(k->L->b, fty, f, args, 2, "");
}

LLVMValueRef dn_call_f32(DnKernel *k, const char *name, LLVMValueRef x)
{
    if (!strcmp(name, "llvm.exp.f32")) return dn_exp_f32(k, x); /* inline, vectorizable (llvm_math.c) */
    if (!strcmp(name, "tanhf")) return dn_tanh_f32(k, x);
    if (!strcmp(name, "erff")) return dn_erf_f32(k, x);
    LLVMTypeRef fty;
    LLVMValueRef f = f32_fn(k, name, 1, &fty);
    return LLVMBuildCall2(k->L->b, fty, f, &x, 1, "");
}

/* ---- if-blocks ------------------------------------------------------------- */

LLVMBasicBlockRef dn_if_begin(DnKernel *k, LLVMValueRef cond)
{
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(k->L->ctx, k->fn, "if.then");
    LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(k->L->ctx, k->fn, "if.end");
    LLVMBuildCondBr(k->L->b, cond, then, after);
    LLVMPositionBuilderAtEnd(k->L->b, then);
    return after;
}

void dn_if_end(DnKernel *k, LLVMBasicBlockRef after)
{
    LLVMBuildBr(k->L->b, after);
    LLVMPositionBuilderAtEnd(k->L->b, after);
}

bool dn_llvm_fast_kernels(const DnKernel *k) { return !(k->L->opt && k->L->opt->direct_kernels); }
