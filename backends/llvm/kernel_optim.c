/* kernel_optim.c -- kernels of the optimizer updates (ops.def): sgd_update
 * and adam_update, PyTorch's formulas, in place on the parameter and its
 * state, parallel over elements.
 *
 * The learning rate of step t (the session's counter c->step, 0-based) is
 * computed at the top of each call in double from the session's base rate
 * c->lr and the schedule attributes: lr_t = lr * warm(t) * sched(t).
 */
#include <math.h>

#include "llvm_internal.h"

/* Calls the f64 intrinsic 'name' with 'n' arguments. */
static LLVMValueRef call_f64(DnKernel *k, const char *name, int n, LLVMValueRef *args)
{
    LLVMTypeRef at[2] = {k->L->f64, k->L->f64};
    LLVMTypeRef fty = LLVMFunctionType(k->L->f64, at, (unsigned)n, 0);
    LLVMValueRef f = LLVMGetNamedFunction(k->L->mod, name);
    if (!f) f = LLVMAddFunction(k->L->mod, name, fty);
    return LLVMBuildCall2(k->L->b, fty, f, args, (unsigned)n, "");
}

static LLVMValueRef d64(DnKernel *k, double v) { return LLVMConstReal(k->L->f64, v); }

/* The schedule factor sched(t) times the base rate; see ops.def. */
static LLVMValueRef scheduled(DnKernel *k, LLVMValueRef t, LLVMValueRef lr)
{
    LLVMBuilderRef b = k->L->b;
    const char *sched = dn_op_str(k->op, "sched");
    if (strcmp(sched, "step") == 0) {
        double size = (double)dn_op_int(k->op, "step_size");
        LLVMValueRef e = LLVMBuildFDiv(b, t, d64(k, size > 0 ? size : 1), "");
        LLVMValueRef args[2] = {d64(k, dn_op_float(k->op, "gamma")), call_f64(k, "llvm.floor.f64", 1, &e)};
        return LLVMBuildFMul(b, lr, call_f64(k, "llvm.pow.f64", 2, args), "");
    }
    if (strcmp(sched, "cosine") == 0) { /* min_lr + (lr - min_lr)(1 + cos(pi min(t,T)/T))/2 */
        double T = (double)dn_op_int(k->op, "total_steps"), min_lr = dn_op_float(k->op, "min_lr");
        if (T <= 0) T = 1;
        LLVMValueRef tc = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, t, d64(k, T), ""), t, d64(k, T), "");
        LLVMValueRef ang = LLVMBuildFMul(b, tc, d64(k, M_PI / T), "");
        LLVMValueRef c = LLVMBuildFAdd(b, d64(k, 1), call_f64(k, "llvm.cos.f64", 1, &ang), "");
        LLVMValueRef span = LLVMBuildFSub(b, lr, d64(k, min_lr), "");
        return LLVMBuildFAdd(b, d64(k, min_lr), LLVMBuildFMul(b, span, LLVMBuildFMul(b, c, d64(k, 0.5), ""), ""), "");
    }
    return lr;
}

/* lr_t as double; 't' receives the step as double. */
static LLVMValueRef lr_at_step(DnKernel *k, LLVMValueRef *t)
{
    LLVMBuilderRef b = k->L->b;
    *t = LLVMBuildSIToFP(b, dn_call_field(k, DN_CALL_STEP), k->L->f64, "t");
    LLVMValueRef lr = LLVMBuildFPExt(b, dn_call_field(k, DN_CALL_LR), k->L->f64, "lr");
    LLVMValueRef r = scheduled(k, *t, lr);
    int64_t warmup = dn_op_int(k->op, "warmup");
    if (warmup > 0) {
        LLVMValueRef in_warm = LLVMBuildFCmp(b, LLVMRealOLT, *t, d64(k, (double)warmup), "");
        LLVMValueRef w = LLVMBuildFDiv(b, LLVMBuildFAdd(b, *t, d64(k, 1), ""), d64(k, (double)warmup), "");
        r = LLVMBuildFMul(b, r, LLVMBuildSelect(b, in_warm, w, d64(k, 1), ""), "");
    }
    return r;
}

static void par_param(DnKernel *k)
{
    k->par_n = 0;
    k->par_b = dn_shape_numel_static(&k->op->in[0]->shape);
}

static LLVMValueRef fsub(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(k->L->b, a, b, ""); }
static LLVMValueRef f32of(DnKernel *k, LLVMValueRef d) { return LLVMBuildFPTrunc(k->L->b, d, k->L->f32, ""); }

/* PyTorch SGD: g = grad + wd p;  buf = t==0 ? g : m buf + (1-d) g;
 * g = nesterov ? g + m buf : buf;  p -= lr_t g. */
void dn_kernel_sgd_update(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    double mom = dn_op_float(k->op, "momentum"), damp = dn_op_float(k->op, "dampening");
    double wd = dn_op_float(k->op, "weight_decay");
    int64_t nesterov = dn_op_int(k->op, "nesterov");
    par_param(k);
    LLVMValueRef t, lr = f32of(k, lr_at_step(k, &t));
    LLVMValueRef first = LLVMBuildFCmp(b, LLVMRealOEQ, t, d64(k, 0), "first");
    DnLoop l = dn_loop_begin(k, k->begin, k->end, "i");
    LLVMValueRef p = dn_load_f32(k, k->in[0], l.i), g = dn_load_f32(k, k->in[1], l.i);
    if (wd != 0) g = dn_fadd(k, g, dn_fmul(k, dn_f32(k, wd), p));
    if (mom != 0) {
        LLVMValueRef old = dn_load_f32(k, k->in[2], l.i);
        LLVMValueRef upd = dn_fadd(k, dn_fmul(k, dn_f32(k, mom), old), dn_fmul(k, dn_f32(k, 1.0 - damp), g));
        LLVMValueRef buf = LLVMBuildSelect(b, first, g, upd, "buf");
        dn_store_f32(k, k->in[2], l.i, buf);
        g = nesterov ? dn_fadd(k, g, dn_fmul(k, dn_f32(k, mom), buf)) : buf;
    }
    dn_store_f32(k, k->in[0], l.i, fsub(k, p, dn_fmul(k, lr, g)));
    dn_loop_end(k, &l);
}

/* PyTorch Adam/AdamW (single-tensor form): m.lerp_(g, 1-b1);
 * v = b2 v + (1-b2) g^2;  p -= (lr_t / bc1) * m / (sqrt(v) / sqrt(bc2) + eps). */
void dn_kernel_adam_update(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    double b1 = dn_op_float(k->op, "beta1"), b2 = dn_op_float(k->op, "beta2");
    double eps = dn_op_float(k->op, "eps"), wd = dn_op_float(k->op, "weight_decay");
    bool decoupled = dn_op_int(k->op, "decoupled") != 0;
    par_param(k);
    LLVMValueRef t, lr = lr_at_step(k, &t);
    LLVMValueRef t1 = LLVMBuildFAdd(b, t, d64(k, 1), "");
    LLVMValueRef pa[2] = {d64(k, b1), t1}, pb[2] = {d64(k, b2), t1};
    LLVMValueRef bc1 = LLVMBuildFSub(b, d64(k, 1), call_f64(k, "llvm.pow.f64", 2, pa), "");
    LLVMValueRef bc2 = LLVMBuildFSub(b, d64(k, 1), call_f64(k, "llvm.pow.f64", 2, pb), "");
    LLVMValueRef step = f32of(k, LLVMBuildFDiv(b, lr, bc1, "step_size"));
    LLVMValueRef bc2s = f32of(k, call_f64(k, "llvm.sqrt.f64", 1, &bc2));
    LLVMValueRef shrink = f32of(k, LLVMBuildFSub(b, d64(k, 1), LLVMBuildFMul(b, lr, d64(k, wd), ""), ""));
    DnLoop l = dn_loop_begin(k, k->begin, k->end, "i");
    LLVMValueRef p = dn_load_f32(k, k->in[0], l.i), g = dn_load_f32(k, k->in[1], l.i);
    if (wd != 0 && !decoupled) g = dn_fadd(k, g, dn_fmul(k, dn_f32(k, wd), p));
    if (wd != 0 && decoupled) p = dn_fmul(k, p, shrink);
    LLVMValueRef m = dn_load_f32(k, k->in[2], l.i), v = dn_load_f32(k, k->in[3], l.i);
    m = dn_fadd(k, m, dn_fmul(k, dn_f32(k, 1.0 - b1), fsub(k, g, m)));
    v = dn_fadd(k, dn_fmul(k, dn_f32(k, b2), v), dn_fmul(k, dn_f32(k, 1.0 - b2), dn_fmul(k, g, g)));
    dn_store_f32(k, k->in[2], l.i, m);
    dn_store_f32(k, k->in[3], l.i, v);
    LLVMValueRef den = dn_fadd(k, LLVMBuildFDiv(b, dn_call_f32(k, "llvm.sqrt.f32", v), bc2s, ""), dn_f32(k, eps));
    LLVMValueRef upd = dn_fmul(k, step, LLVMBuildFDiv(b, m, den, ""));
    dn_store_f32(k, k->in[0], l.i, fsub(k, p, upd));
    dn_loop_end(k, &l);
}
