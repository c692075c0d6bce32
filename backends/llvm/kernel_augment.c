/* kernel_augment.c -- kernels of the training-only augmentations
 * (random_flip, random_crop, random_resized_crop, color_jitter,
 * pca_lighting; formulas in ops.def).
 *
 * Each kernel is parallel over the samples of the batch (par_n = 1, so the
 * count is N): iteration n draws sample n's random words from Philox 4x32-10
 * inline (dn_llvm_philox, the same function as dnrt_philox4x32) with counter
 * {n, d, step lo, salt}, then writes the whole sample.  The arithmetic
 * follows ops.def step by step (double where it says double), so
 * tests/unit/test_augment.c can recompute every result in C.
 */
#include <math.h>

#include "llvm_internal.h"

#define TWO_PI 6.283185307179586476925

/* Per-kernel state: geometry and the sample loop. */
typedef struct Aug {
    int64_t C, H, W, h, w; /* in [., C, H, W], out [., C, h, w] */
    LLVMValueRef key[2], step, salt;
    DnLoop n;            /* over this call's samples */
    LLVMValueRef xb, yb; /* element offsets of sample n in x and y */
} Aug;

static LLVMValueRef u32(DnKernel *k, uint32_t v) { return LLVMConstInt(k->L->i32, v, 0); }
static LLVMValueRef f64(DnKernel *k, double v) { return LLVMConstReal(k->L->f64, v); }

/* Calls the f64 -> f64 intrinsic 'name' ("llvm.log.f64", ...). */
static LLVMValueRef call_f64(DnKernel *k, const char *name, LLVMValueRef x)
{
    LLVMTypeRef fty = LLVMFunctionType(k->L->f64, &k->L->f64, 1, 0);
    LLVMValueRef f = LLVMGetNamedFunction(k->L->mod, name);
    if (!f) f = LLVMAddFunction(k->L->mod, name, fty);
    return LLVMBuildCall2(k->L->b, fty, f, &x, 1, "");
}

/* Sets up 'a' and opens the sample loop; the builder is then inside it. */
static void begin(DnKernel *k, Aug *a)
{
    LLVMBuilderRef b = k->L->b;
    const DnShape *x = &k->op->in[0]->shape, *y = &k->op->out[0]->shape;
    a->C = x->dim[1], a->H = x->dim[2], a->W = x->dim[3], a->h = y->dim[2], a->w = y->dim[3];
    bool hn = dn_shape_has_n(x);
    k->par_n = hn ? 1 : 0;
    k->par_b = hn ? 0 : x->dim[0];
    dn_llvm_philox_key(k, a->key);
    a->step = LLVMBuildTrunc(b, dn_call_field(k, DN_CALL_STEP), k->L->i32, "step.lo");
    a->salt = u32(k, (uint32_t)dn_op_int(k->op, "salt"));
    a->n = dn_loop_begin(k, k->begin, k->end, "n");
    a->xb = dn_mul(k, a->n.i, dn_i64(k, a->C * a->H * a->W));
    a->yb = dn_mul(k, a->n.i, dn_i64(k, a->C * a->h * a->w));
}

static void end(DnKernel *k, Aug *a) { dn_loop_end(k, &a->n); }

/* r[0..3] = the words of block 'd' (i32) of the current sample. */
static void draw(DnKernel *k, Aug *a, LLVMValueRef d, LLVMValueRef r[4])
{
    LLVMValueRef ctr[4] = {LLVMBuildTrunc(k->L->b, a->n.i, k->L->i32, ""), d, a->step, a->salt};
    dn_llvm_philox(k, a->key, ctr, r);
}

/* u(w) = w * 2^-32 as a double. */
static LLVMValueRef unit(DnKernel *k, LLVMValueRef w)
{
    return LLVMBuildFMul(k->L->b, LLVMBuildUIToFP(k->L->b, w, k->L->f64, ""), f64(k, 0x1p-32), "u");
}

/* randint(w, m) = (w * m) >> 32 as an i64; 'm' an i64 value >= 1. */
static LLVMValueRef randint(DnKernel *k, LLVMValueRef w, LLVMValueRef m)
{
    LLVMBuilderRef b = k->L->b;
    return LLVMBuildLShr(b, LLVMBuildMul(b, LLVMBuildZExt(b, w, k->L->i64, ""), m, ""), dn_i64(k, 32), "");
}

static LLVMValueRef fsub(DnKernel *k, LLVMValueRef a, LLVMValueRef c) { return LLVMBuildFSub(k->L->b, a, c, ""); }
static LLVMValueRef fmul(DnKernel *k, LLVMValueRef a, LLVMValueRef c) { return LLVMBuildFMul(k->L->b, a, c, ""); }
static LLVMValueRef fadd(DnKernel *k, LLVMValueRef a, LLVMValueRef c) { return LLVMBuildFAdd(k->L->b, a, c, ""); }

/* ---- random_flip ------------------------------------------------------------ */

void dn_kernel_random_flip(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    Aug a;
    begin(k, &a);
    double thr_d = ceil(dn_op_float(k->op, "p") * 4294967296.0); /* flip when r < thr */
    int64_t thr = thr_d < 0 ? 0 : thr_d > 4294967296.0 ? 4294967296LL : (int64_t)thr_d;
    LLVMValueRef r[4];
    draw(k, &a, u32(k, 0), r);
    LLVMValueRef flip = LLVMBuildICmp(b, LLVMIntULT, LLVMBuildZExt(b, r[0], k->L->i64, ""), dn_i64(k, thr), "flip");
    DnLoop row = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.C * a.H), "row");
    LLVMValueRef base = dn_mul(k, row.i, dn_i64(k, a.W));
    DnLoop j = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.W), "j");
    LLVMValueRef src = LLVMBuildSelect(b, flip, LLVMBuildSub(b, dn_i64(k, a.W - 1), j.i, ""), j.i, "");
    LLVMValueRef v = dn_load_f32(k, k->in[0], dn_add(k, a.xb, dn_add(k, base, src)));
    dn_store_f32(k, k->out[0], dn_add(k, a.yb, dn_add(k, base, j.i)), v);
    dn_loop_end(k, &j);
    dn_loop_end(k, &row);
    end(k, &a);
}

/* ---- random_crop -------------------------------------------------------------- */

void dn_kernel_random_crop(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    Aug a;
    begin(k, &a);
    int64_t pad = dn_op_int(k->op, "pad");
    LLVMValueRef r[4];
    draw(k, &a, u32(k, 0), r);
    LLVMValueRef top = randint(k, r[0], dn_i64(k, a.H + 2 * pad - a.h + 1));
    LLVMValueRef left = randint(k, r[1], dn_i64(k, a.W + 2 * pad - a.w + 1));
    DnLoop c = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.C), "c");
    LLVMValueRef xc = dn_add(k, a.xb, dn_mul(k, c.i, dn_i64(k, a.H * a.W)));
    DnLoop i = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.h), "i");
    LLVMValueRef sy = LLVMBuildSub(b, dn_add(k, top, i.i), dn_i64(k, pad), "sy");
    LLVMValueRef rowok = LLVMBuildICmp(b, LLVMIntULT, sy, dn_i64(k, a.H), ""); /* 0 <= sy < H */
    LLVMValueRef yrow = dn_add(k, a.yb, dn_mul(k, dn_add(k, dn_mul(k, c.i, dn_i64(k, a.h)), i.i), dn_i64(k, a.w)));
    DnLoop j = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.w), "j");
    LLVMValueRef sx = LLVMBuildSub(b, dn_add(k, left, j.i), dn_i64(k, pad), "sx");
    LLVMValueRef ok = LLVMBuildAnd(b, rowok, LLVMBuildICmp(b, LLVMIntULT, sx, dn_i64(k, a.W), ""), "ok");
    LLVMValueRef idx = LLVMBuildSelect(b, ok, dn_add(k, xc, dn_add(k, dn_mul(k, sy, dn_i64(k, a.W)), sx)), a.xb, "");
    LLVMValueRef v = LLVMBuildSelect(b, ok, dn_load_f32(k, k->in[0], idx), dn_f32(k, 0), "");
    dn_store_f32(k, k->out[0], dn_add(k, yrow, j.i), v);
    dn_loop_end(k, &j);
    dn_loop_end(k, &i);
    dn_loop_end(k, &c);
    end(k, &a);
}

/* ---- random_resized_crop -------------------------------------------------------- */

typedef struct Crop {
    LLVMValueRef top, left, ch, cw; /* i64 variables */
} Crop;

/* The crop torchvision's RandomResizedCrop.get_params picks (ops.def). */
static void rrc_params(DnKernel *k, Aug *a, Crop *cr)
{
    LLVMBuilderRef b = k->L->b;
    const DnOp *op = k->op;
    double s0 = dn_op_float(op, "scale_min"), s1 = dn_op_float(op, "scale_max");
    double l0 = log(dn_op_float(op, "ratio_min")), l1 = log(dn_op_float(op, "ratio_max"));
    double q0 = dn_op_float(op, "ratio_min"), q1 = dn_op_float(op, "ratio_max"), in_ratio = (double)a->W / (double)a->H;
    int64_t fw = a->W, fh = a->H; /* the fallback: centre crop */
    if (in_ratio < q0)
        fh = (int64_t)round((double)a->W / q0);
    else if (in_ratio > q1)
        fw = (int64_t)round((double)a->H * q1);
    cr->top = dn_var(k, k->L->i64, dn_i64(k, (a->H - fh) / 2), "top");
    cr->left = dn_var(k, k->L->i64, dn_i64(k, (a->W - fw) / 2), "left");
    cr->ch = dn_var(k, k->L->i64, dn_i64(k, fh), "ch");
    cr->cw = dn_var(k, k->L->i64, dn_i64(k, fw), "cw");
    LLVMValueRef found = dn_var(k, k->L->i1, LLVMConstInt(k->L->i1, 0, 0), "found");
    DnLoop t = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, 10), "try");
    LLVMBasicBlockRef skip = dn_if_begin(k, LLVMBuildNot(b, dn_get(k, found, k->L->i1), ""));
    LLVMValueRef r[4];
    draw(k, a, LLVMBuildTrunc(b, t.i, k->L->i32, ""), r);
    LLVMValueRef frac = fadd(k, f64(k, s0), fmul(k, unit(k, r[0]), f64(k, s1 - s0)));
    LLVMValueRef area = fmul(k, f64(k, (double)(a->H * a->W)), frac);
    LLVMValueRef ar = call_f64(k, "llvm.exp.f64", fadd(k, f64(k, l0), fmul(k, unit(k, r[1]), f64(k, l1 - l0))));
    LLVMValueRef cw = call_f64(k, "llvm.round.f64", call_f64(k, "llvm.sqrt.f64", fmul(k, area, ar)));
    LLVMValueRef ch = call_f64(k, "llvm.round.f64", call_f64(k, "llvm.sqrt.f64", LLVMBuildFDiv(b, area, ar, "")));
    cw = LLVMBuildFPToSI(b, cw, k->L->i64, "cw");
    ch = LLVMBuildFPToSI(b, ch, k->L->i64, "ch");
    LLVMValueRef okw = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGT, cw, dn_i64(k, 0), ""),
                                    LLVMBuildICmp(b, LLVMIntSLE, cw, dn_i64(k, a->W), ""), "");
    LLVMValueRef okh = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGT, ch, dn_i64(k, 0), ""),
                                    LLVMBuildICmp(b, LLVMIntSLE, ch, dn_i64(k, a->H), ""), "");
    LLVMBasicBlockRef after = dn_if_begin(k, LLVMBuildAnd(b, okw, okh, "ok"));
    dn_set(k, found, LLVMConstInt(k->L->i1, 1, 0));
    dn_set(k, cr->cw, cw);
    dn_set(k, cr->ch, ch);
    dn_set(k, cr->top, randint(k, r[2], LLVMBuildSub(b, dn_i64(k, a->H + 1), ch, "")));
    dn_set(k, cr->left, randint(k, r[3], LLVMBuildSub(b, dn_i64(k, a->W + 1), cw, "")));
    dn_if_end(k, after);
    dn_if_end(k, skip);
    dn_loop_end(k, &t);
}

/* Source coordinate of output index 'o' (i64) for 'scale' (f32):
 * s = max(scale (o + 0.5) - 0.5, 0); *i0 = floor(s), *i1 = min(i0 + 1, len - 1), *l = s - i0. */
static void src_index(DnKernel *k, LLVMValueRef o, LLVMValueRef scale, LLVMValueRef len, LLVMValueRef *i0,
                      LLVMValueRef *i1, LLVMValueRef *l)
{
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef of = fadd(k, LLVMBuildSIToFP(b, o, k->L->f32, ""), dn_f32(k, 0.5));
    LLVMValueRef s = fsub(k, fmul(k, scale, of), dn_f32(k, 0.5));
    s = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, s, dn_f32(k, 0), ""), dn_f32(k, 0), s, "src");
    *i0 = LLVMBuildFPToSI(b, s, k->L->i64, "");
    LLVMValueRef more = LLVMBuildICmp(b, LLVMIntSLT, *i0, LLVMBuildSub(b, len, dn_i64(k, 1), ""), "");
    *i1 = dn_add(k, *i0, LLVMBuildZExt(b, more, k->L->i64, ""));
    *l = fsub(k, s, LLVMBuildSIToFP(b, *i0, k->L->f32, ""));
}

void dn_kernel_random_resized_crop(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    Aug a;
    begin(k, &a);
    Crop cr;
    rrc_params(k, &a, &cr);
    LLVMValueRef top = dn_get(k, cr.top, k->L->i64), left = dn_get(k, cr.left, k->L->i64);
    LLVMValueRef ch = dn_get(k, cr.ch, k->L->i64), cw = dn_get(k, cr.cw, k->L->i64);
    LLVMValueRef sch = LLVMBuildFDiv(b, LLVMBuildSIToFP(b, ch, k->L->f32, ""), dn_f32(k, (double)a.h), "");
    LLVMValueRef scw = LLVMBuildFDiv(b, LLVMBuildSIToFP(b, cw, k->L->f32, ""), dn_f32(k, (double)a.w), "");
    LLVMValueRef one = dn_f32(k, 1);
    DnLoop c = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.C), "c");
    LLVMValueRef corner = dn_add(k, dn_mul(k, top, dn_i64(k, a.W)), left); /* the crop's first pixel */
    LLVMValueRef xc = dn_add(k, a.xb, dn_add(k, dn_mul(k, c.i, dn_i64(k, a.H * a.W)), corner));
    DnLoop i = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.h), "i");
    LLVMValueRef y0, y1, ly;
    src_index(k, i.i, sch, ch, &y0, &y1, &ly);
    LLVMValueRef r0 = dn_add(k, xc, dn_mul(k, y0, dn_i64(k, a.W))), r1 = dn_add(k, xc, dn_mul(k, y1, dn_i64(k, a.W)));
    LLVMValueRef yrow = dn_add(k, a.yb, dn_mul(k, dn_add(k, dn_mul(k, c.i, dn_i64(k, a.h)), i.i), dn_i64(k, a.w)));
    DnLoop j = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a.w), "j");
    LLVMValueRef x0, x1, lx;
    src_index(k, j.i, scw, cw, &x0, &x1, &lx);
    LLVMValueRef lx0 = fsub(k, one, lx), ly0 = fsub(k, one, ly);
    LLVMValueRef top_v = fadd(k, fmul(k, lx0, dn_load_f32(k, k->in[0], dn_add(k, r0, x0))),
                              fmul(k, lx, dn_load_f32(k, k->in[0], dn_add(k, r0, x1))));
    LLVMValueRef bot_v = fadd(k, fmul(k, lx0, dn_load_f32(k, k->in[0], dn_add(k, r1, x0))),
                              fmul(k, lx, dn_load_f32(k, k->in[0], dn_add(k, r1, x1))));
    dn_store_f32(k, k->out[0], dn_add(k, yrow, j.i), fadd(k, fmul(k, ly0, top_v), fmul(k, ly, bot_v)));
    dn_loop_end(k, &j);
    dn_loop_end(k, &i);
    dn_loop_end(k, &c);
    end(k, &a);
}

/* ---- color_jitter ----------------------------------------------------------------- */

/* (float)(1 - s + 2 s u(w)) */
static LLVMValueRef jitter_factor(DnKernel *k, double s, LLVMValueRef w)
{
    LLVMValueRef f = fadd(k, f64(k, 1 - s), fmul(k, f64(k, 2 * s), unit(k, w)));
    return LLVMBuildFPTrunc(k->L->b, f, k->L->f32, "");
}

void dn_kernel_color_jitter(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    Aug a;
    begin(k, &a);
    int64_t S = a.C * a.H * a.W;
    LLVMValueRef r[4];
    draw(k, &a, u32(k, 0), r);
    LLVMValueRef fb = jitter_factor(k, dn_op_float(k->op, "brightness"), r[0]);
    LLVMValueRef fc = jitter_factor(k, dn_op_float(k->op, "contrast"), r[1]);
    LLVMValueRef sum = dn_var(k, k->L->f64, f64(k, 0), "sum");
    DnLoop e = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, S), "e");
    LLVMValueRef x = LLVMBuildFPExt(b, dn_load_f32(k, k->in[0], dn_add(k, a.xb, e.i)), k->L->f64, "");
    dn_set(k, sum, fadd(k, dn_get(k, sum, k->L->f64), x));
    dn_loop_end(k, &e);
    LLVMValueRef mean = LLVMBuildFDiv(b, dn_get(k, sum, k->L->f64), f64(k, (double)S), "mean");
    LLVMValueRef m = LLVMBuildFPTrunc(b, fmul(k, LLVMBuildFPExt(b, fb, k->L->f64, ""), mean), k->L->f32, "m");
    DnLoop e2 = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, S), "e");
    LLVMValueRef v = dn_load_f32(k, k->in[0], dn_add(k, a.xb, e2.i));
    v = fadd(k, fmul(k, fsub(k, fmul(k, fb, v), m), fc), m);
    dn_store_f32(k, k->out[0], dn_add(k, a.yb, e2.i), v);
    dn_loop_end(k, &e2);
    end(k, &a);
}

/* ---- pca_lighting ------------------------------------------------------------------ */

void dn_kernel_pca_lighting(DnKernel *k)
{
    LLVMBuilderRef b = k->L->b;
    const DnOp *op = k->op;
    Aug a;
    begin(k, &a);
    double sd = dn_op_float(op, "std"), ev[3], vec[3][3];
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "eigval%d", i);
        ev[i] = dn_op_float(op, name);
        for (int j = 0; j < 3; j++) {
            snprintf(name, sizeof name, "eigvec%d%d", i, j);
            vec[i][j] = dn_op_float(op, name);
        }
    }
    LLVMValueRef r[4], u[4], rad[2], alpha[3];
    draw(k, &a, u32(k, 0), r);
    for (int i = 0; i < 4; i++) u[i] = unit(k, r[i]);
    for (int i = 0; i < 2; i++) /* sqrt(-2 log(1 - u)) */
        rad[i] = call_f64(k, "llvm.sqrt.f64",
                          fmul(k, f64(k, -2), call_f64(k, "llvm.log.f64", fsub(k, f64(k, 1), u[2 * i]))));
    LLVMValueRef th0 = fmul(k, f64(k, TWO_PI), u[1]), th1 = fmul(k, f64(k, TWO_PI), u[3]);
    alpha[0] = fmul(k, f64(k, sd), fmul(k, rad[0], call_f64(k, "llvm.cos.f64", th0)));
    alpha[1] = fmul(k, f64(k, sd), fmul(k, rad[0], call_f64(k, "llvm.sin.f64", th0)));
    alpha[2] = fmul(k, f64(k, sd), fmul(k, rad[1], call_f64(k, "llvm.cos.f64", th1)));
    int64_t HW = a.H * a.W;
    for (int c = 0; c < 3; c++) {
        LLVMValueRef s = f64(k, 0);
        for (int i = 0; i < 3; i++) s = fadd(k, s, fmul(k, fmul(k, f64(k, vec[c][i]), alpha[i]), f64(k, ev[i])));
        s = LLVMBuildFPTrunc(b, s, k->L->f32, "shift");
        LLVMValueRef base = dn_i64(k, c * HW);
        DnLoop e = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, HW), "e");
        LLVMValueRef at = dn_add(k, base, e.i);
        dn_store_f32(k, k->out[0], dn_add(k, a.yb, at), fadd(k, dn_load_f32(k, k->in[0], dn_add(k, a.xb, at)), s));
        dn_loop_end(k, &e);
    }
    end(k, &a);
}
