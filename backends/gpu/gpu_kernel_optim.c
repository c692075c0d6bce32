/* gpu_kernel_optim.c -- the optimizer updates on the GPU: sgd_update and
 * adam_update (ops.def), in place on the parameter and its state (the ops
 * have no results).  One work item per parameter element; each item
 * computes the step's learning rate from the run-time step counter and
 * base rate exactly as the CPU kernel does (backends/llvm/kernel_optim.c):
 * the schedule in double, then the same roundings to float, so both
 * targets take the same steps.
 */
#include <math.h>

#include "gpu_internal.h"

/* Emits  double lr_t = <the scheduled rate of step 'step' from base 'lr'>;
 * and  double t  = the step as a double, when the schedule or 'need_t' needs it. */
static void emit_lr_at_step(DnGpuGen *G, bool need_t)
{
    const DnOp *op = G->op;
    const char *sched = dn_op_str(op, "sched");
    if (need_t || strcmp(sched, "const") != 0 || dn_op_int(op, "warmup") > 0) dn_gk_line(G, "double t = (double)step;");
    dn_gk_line(G, "double lr_t = (double)lr;");
    if (strcmp(sched, "step") == 0) {
        double size = (double)dn_op_int(op, "step_size");
        dn_gk_line(G, "lr_t = lr_t * pow(%s, floor(t / %s));", dn_gk_double(G, dn_op_float(op, "gamma")),
                   dn_gk_double(G, size > 0 ? size : 1));
    } else if (strcmp(sched, "cosine") == 0) { /* min_lr + (lr - min_lr)((1 + cos(pi min(t,T)/T)) / 2) */
        double T = (double)dn_op_int(op, "total_steps"), min_lr = dn_op_float(op, "min_lr");
        if (T <= 0) T = 1;
        dn_gk_line(G, "double tc = t < %s ? t : %s;", dn_gk_double(G, T), dn_gk_double(G, T));
        dn_gk_line(G, "double c = 1.0 + cos(tc * %s);", dn_gk_double(G, M_PI / T));
        dn_gk_line(G, "lr_t = %s + (lr_t - %s) * (c * 0.5);", dn_gk_double(G, min_lr), dn_gk_double(G, min_lr));
    }
    int64_t warmup = dn_op_int(op, "warmup");
    if (warmup > 0)
        dn_gk_line(G, "lr_t = lr_t * (t < %s ? (t + 1.0) / %s : 1.0);", dn_gk_double(G, (double)warmup),
                   dn_gk_double(G, (double)warmup));
}

/* Opens the kernel: parameters p, g, then 'nstate' state buffers named in
 * 'state', the step and the base rate; the body's element index i. */
static int64_t begin_update(DnGpuGen *G, int nstate, const char *const *state)
{
    const DnValue *p = G->op->in[0];
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "p");
    dn_gk_ptr(G, 1, "float", "g");
    for (int s = 0; s < nstate; s++) dn_gk_ptr(G, 2 + s, "float", state[s]);
    dn_gk_rt(G, "step", DNRT_ARG_STEP);
    dn_gk_rt(G, "lr", DNRT_ARG_LR);
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, p));
    return dn_gk_numel(p);
}

/* PyTorch SGD: g = grad + wd p;  buf = t==0 ? g : m buf + (1-d) g;
 * g = nesterov ? g + m buf : buf;  p -= lr_t g  (lr_t rounded to float). */
void dn_gpu_kernel_sgd_update(DnGpuGen *G)
{
    const DnOp *op = G->op;
    double mom = dn_op_float(op, "momentum"), damp = dn_op_float(op, "dampening");
    double wd = dn_op_float(op, "weight_decay");
    bool nesterov = dn_op_int(op, "nesterov") != 0;
    static const char *const state[] = {"buf"};
    int64_t count = begin_update(G, mom != 0 ? 1 : 0, state);
    emit_lr_at_step(G, false);
    dn_gk_line(G, "float lrf = (float)lr_t;");
    dn_gk_line(G, "float pv = p[i], gv = g[i];");
    if (wd != 0) dn_gk_line(G, "gv = gv + %s * pv;", dn_gk_float(G, (float)wd));
    if (mom != 0) {
        dn_gk_line(G, "float bv = step == 0 ? gv : %s * buf[i] + %s * gv;", dn_gk_float(G, (float)mom),
                   dn_gk_float(G, (float)(1.0 - damp)));
        dn_gk_line(G, "buf[i] = bv;");
        if (nesterov)
            dn_gk_line(G, "gv = gv + %s * bv;", dn_gk_float(G, (float)mom));
        else
            dn_gk_line(G, "gv = bv;");
    }
    dn_gk_line(G, "p[i] = pv - lrf * gv;");
    dn_gk_end(G, 0, count, 256);
}

/* PyTorch Adam / AdamW (single-tensor form), as the CPU kernel:
 * step = (float)(lr_t / bc1), bc2s = (float)sqrt(bc2) with bc = 1 - beta^(t+1);
 * m += (1-b1)(g - m);  v = b2 v + (1-b2) g^2;  p -= step * m / (sqrt(v) / bc2s + eps). */
void dn_gpu_kernel_adam_update(DnGpuGen *G)
{
    const DnOp *op = G->op;
    double b1 = dn_op_float(op, "beta1"), b2 = dn_op_float(op, "beta2");
    double eps = dn_op_float(op, "eps"), wd = dn_op_float(op, "weight_decay");
    bool decoupled = dn_op_int(op, "decoupled") != 0;
    static const char *const state[] = {"m", "v"};
    int64_t count = begin_update(G, 2, state);
    emit_lr_at_step(G, true);
    dn_gk_line(G, "double bc1 = 1.0 - pow(%s, t + 1.0);", dn_gk_double(G, b1));
    dn_gk_line(G, "double bc2 = 1.0 - pow(%s, t + 1.0);", dn_gk_double(G, b2));
    dn_gk_line(G, "float step_size = (float)(lr_t / bc1);");
    dn_gk_line(G, "float bc2s = (float)sqrt(bc2);");
    dn_gk_line(G, "float pv = p[i], gv = g[i];");
    if (wd != 0 && !decoupled) dn_gk_line(G, "gv = gv + %s * pv;", dn_gk_float(G, (float)wd));
    if (wd != 0 && decoupled) dn_gk_line(G, "pv = pv * (float)(1.0 - lr_t * %s);", dn_gk_double(G, wd));
    dn_gk_line(G, "float mv = m[i], vv = v[i];");
    dn_gk_line(G, "mv = mv + %s * (gv - mv);", dn_gk_float(G, (float)(1.0 - b1)));
    dn_gk_line(G, "vv = %s * vv + %s * (gv * gv);", dn_gk_float(G, (float)b2), dn_gk_float(G, (float)(1.0 - b2)));
    dn_gk_line(G, "m[i] = mv;");
    dn_gk_line(G, "v[i] = vv;");
    dn_gk_line(G, "float den = sqrtf(vv) / bc2s + %s;", dn_gk_float(G, (float)eps));
    dn_gk_line(G, "p[i] = pv - step_size * (mv / den);");
    dn_gk_end(G, 0, count, 256);
}
