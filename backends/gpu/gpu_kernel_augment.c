/* gpu_kernel_augment.c -- the training-only augmentations on the GPU
 * (random_flip, random_crop, random_resized_crop, color_jitter,
 * pca_lighting; formulas in ops.def).
 *
 * Every sample draws its own random words from Philox 4x32-10 (dn_philox)
 * with counter {n, d, step lo, salt}, and the arithmetic follows the CPU
 * kernel (backends/llvm/kernel_augment.c) step by step, double where
 * ops.def says double, so flips and crops are bit-identical to the CPU's
 * and the others agree to rounding.
 * Geometry: work groups never span two samples.  Flip, crops and lighting
 * give each sample ceil(S / CHUNK) groups (S = its output elements); item
 * 0 of a group draws the sample's parameters into local memory, then the
 * group writes its chunk of the sample, coalesced.  color_jitter needs the
 * sample's mean first: one group per sample sums it in double (a tree in
 * local memory), then writes the whole sample.
 */
#include <math.h>

#include "gpu_internal.h"

#define LL(v)  ((long long)(v))
#define GROUP  256
#define CHUNK  (GROUP * 8) /* output elements per group */
#define TWO_PI 6.283185307179586476925

typedef struct Aug {
    int64_t C, H, W, h, w; /* in [., C, H, W], out [., C, h, w] */
    int64_t S;             /* output elements per sample */
    int64_t groups;        /* per sample */
} Aug;

/* Opens the kernel (x, y, seed, step) and defines ns (the sample), the
 * group's element range [e0, e1) within it, and xs, ys (the sample's
 * elements).  'whole': one group per sample, which covers all of it;
 * else ceil(S / CHUNK) groups of CHUNK elements. */
static Aug begin(DnGpuGen *G, bool whole)
{
    const DnShape *x = &G->op->in[0]->shape, *y = &G->op->out[0]->shape;
    Aug a = {x->dim[1], x->dim[2], x->dim[3], y->dim[2], y->dim[3], 0, 0};
    a.S = a.C * a.h * a.w;
    a.groups = whole ? 1 : (a.S + CHUNK - 1) / CHUNK;
    int64_t chunk = whole ? a.S : CHUNK;
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "float", "y");
    dn_gk_rt(G, "seed", DNRT_ARG_SEED);
    dn_gk_rt(G, "step", DNRT_ARG_STEP);
    dn_gk_line(G, "i64 ns = GROUP_ID / %lld, chunk = GROUP_ID %% %lld;", LL(a.groups), LL(a.groups));
    dn_gk_line(G, "i64 e0 = chunk * %lld, e1 = e0 + %lld < %lld ? e0 + %lld : %lld;", LL(chunk), LL(chunk), LL(a.S),
               LL(chunk), LL(a.S));
    dn_gk_line(G, "GLOBAL const float *xs = x + ns * %lld;", LL(a.C * a.H * a.W));
    dn_gk_line(G, "GLOBAL float *ys = y + ns * %lld;", LL(a.S));
    return a;
}

/* Emits  u32 <r>[4] = the words of block 'd' (an expression) of sample ns. */
static void draw(DnGpuGen *G, const char *r, const char *d)
{
    dn_gk_line(G, "u32 %s[4];", r);
    dn_gk_line(G, "dn_philox((u32)seed, (u32)((u64)seed >> 32), (u32)ns, (u32)(%s), (u32)step, %uu, %s);", d,
               (uint32_t)dn_op_int(G->op, "salt"), r);
}

/* Opens the loop over the group's elements e (close it with "}"); 'split':
 * and splits e into c, i, j (channel, row, column of the output). */
static void for_elements(DnGpuGen *G, const Aug *a, bool split)
{
    dn_gk_line(G, "for (i64 e = e0 + LOCAL_ID; e < e1; e += GROUP_SIZE) {");
    if (split)
        dn_gk_line(G, "    i64 j = e %% %lld, i = (e / %lld) %% %lld, c = e / %lld;", LL(a->w), LL(a->w), LL(a->h),
                   LL(a->h * a->w));
}

static void end(DnGpuGen *G, const Aug *a)
{
    bool has_n = dn_gk_has_n(G->op->in[0]);
    int64_t items = a->groups * GROUP * (has_n ? 1 : G->op->in[0]->shape.dim[0]);
    dn_gk_end(G, has_n ? items : 0, has_n ? 0 : items, GROUP);
}

/* u(w) = w * 2^-32 as double text. */
static const char *unit(DnGpuGen *G, const char *w)
{
    char buf[96];
    snprintf(buf, sizeof buf, "((double)%s * %s)", w, dn_gk_double(G, 0x1p-32));
    size_t n = strlen(buf) + 1;
    return memcpy(dn_arena_alloc(&G->H->cx->arena, n), buf, n);
}

/* randint(w, m) = (w * m) >> 32 (64-bit product) as i64 text; m an i64 expression >= 1. */
static const char *randint(DnGpuGen *G, const char *w, const char *m)
{
    char buf[160];
    snprintf(buf, sizeof buf, "(i64)(((u64)%s * (u64)(%s)) >> 32)", w, m);
    size_t n = strlen(buf) + 1;
    return memcpy(dn_arena_alloc(&G->H->cx->arena, n), buf, n);
}

/* ---- random_flip ------------------------------------------------------------ */

void dn_gpu_kernel_random_flip(DnGpuGen *G)
{
    Aug a = begin(G, false);
    double t = ceil(dn_op_float(G->op, "p") * 4294967296.0); /* flip when r < t */
    int64_t thr = t < 0 ? 0 : t > 4294967296.0 ? 4294967296LL : (int64_t)t;
    dn_gk_line(G, "LOCAL int flip[1];");
    dn_gk_line(G, "if (LOCAL_ID == 0) {");
    draw(G, "r", "0");
    dn_gk_line(G, "    flip[0] = (i64)r[0] < %lld;", LL(thr));
    dn_gk_line(G, "}");
    dn_gk_line(G, "BARRIER();");
    dn_gk_line(G, "int f = flip[0];");
    for_elements(G, &a, false);
    dn_gk_line(G, "    i64 j = e %% %lld;", LL(a.W));
    dn_gk_line(G, "    ys[e] = xs[f ? e - j + (%lld - j) : e];", LL(a.W - 1));
    dn_gk_line(G, "}");
    end(G, &a);
}

/* ---- random_crop -------------------------------------------------------------- */

void dn_gpu_kernel_random_crop(DnGpuGen *G)
{
    Aug a = begin(G, false);
    int64_t pad = dn_op_int(G->op, "pad");
    char mh[32], mw[32];
    snprintf(mh, sizeof mh, "%lld", LL(a.H + 2 * pad - a.h + 1));
    snprintf(mw, sizeof mw, "%lld", LL(a.W + 2 * pad - a.w + 1));
    dn_gk_line(G, "LOCAL i64 corner[2];");
    dn_gk_line(G, "if (LOCAL_ID == 0) {");
    draw(G, "r", "0");
    dn_gk_line(G, "    corner[0] = %s - %lld;", randint(G, "r[0]", mh), LL(pad));
    dn_gk_line(G, "    corner[1] = %s - %lld;", randint(G, "r[1]", mw), LL(pad));
    dn_gk_line(G, "}");
    dn_gk_line(G, "BARRIER();");
    dn_gk_line(G, "i64 top = corner[0], left = corner[1];");
    for_elements(G, &a, true);
    dn_gk_line(G, "    i64 sy = top + i, sx = left + j;");
    dn_gk_line(G, "    bool inside = sy >= 0 && sy < %lld && sx >= 0 && sx < %lld;", LL(a.H), LL(a.W));
    dn_gk_line(G, "    ys[e] = inside ? xs[(c * %lld + sy) * %lld + sx] : 0.0f;", LL(a.H), LL(a.W));
    dn_gk_line(G, "}");
    end(G, &a);
}

/* ---- random_resized_crop -------------------------------------------------------- */

/* Emits the crop torchvision's RandomResizedCrop.get_params picks (ops.def)
 * into crop[0..3] = top, left, ch, cw (item 0 of the group). */
static void rrc_params(DnGpuGen *G, const Aug *a)
{
    const DnOp *op = G->op;
    double s0 = dn_op_float(op, "scale_min"), s1 = dn_op_float(op, "scale_max");
    double q0 = dn_op_float(op, "ratio_min"), q1 = dn_op_float(op, "ratio_max");
    double l0 = log(q0), l1 = log(q1), in_ratio = (double)a->W / (double)a->H;
    int64_t fw = a->W, fh = a->H; /* the fallback: centre crop */
    if (in_ratio < q0)
        fh = (int64_t)round((double)a->W / q0);
    else if (in_ratio > q1)
        fw = (int64_t)round((double)a->H * q1);
    dn_gk_line(G, "LOCAL i64 crop[4];");
    dn_gk_line(G, "if (LOCAL_ID == 0) {");
    dn_gk_line(G, "    i64 top = %lld, left = %lld, ch = %lld, cw = %lld;", LL((a->H - fh) / 2), LL((a->W - fw) / 2),
               LL(fh), LL(fw));
    dn_gk_line(G, "    for (u32 t = 0; t < 10; t++) {");
    draw(G, "r", "t");
    dn_gk_line(G, "        double area = %s * (%s + %s * %s);", dn_gk_double(G, (double)(a->H * a->W)),
               dn_gk_double(G, s0), unit(G, "r[0]"), dn_gk_double(G, s1 - s0));
    dn_gk_line(G, "        double ar = exp(%s + %s * %s);", dn_gk_double(G, l0), unit(G, "r[1]"),
               dn_gk_double(G, l1 - l0));
    dn_gk_line(G, "        i64 tw = (i64)round(sqrt(area * ar)), th = (i64)round(sqrt(area / ar));");
    dn_gk_line(G, "        if (tw > 0 && tw <= %lld && th > 0 && th <= %lld) {", LL(a->W), LL(a->H));
    dn_gk_line(G, "            cw = tw, ch = th;");
    char mh[32], mw[32];
    snprintf(mh, sizeof mh, "%lld - ch", LL(a->H + 1));
    snprintf(mw, sizeof mw, "%lld - cw", LL(a->W + 1));
    dn_gk_line(G, "            top = %s;", randint(G, "r[2]", mh));
    dn_gk_line(G, "            left = %s;", randint(G, "r[3]", mw));
    dn_gk_line(G, "            break;");
    dn_gk_line(G, "        }");
    dn_gk_line(G, "    }");
    dn_gk_line(G, "    crop[0] = top, crop[1] = left, crop[2] = ch, crop[3] = cw;");
    dn_gk_line(G, "}");
    dn_gk_line(G, "BARRIER();");
}

/* Emits the source coordinate of output index 'o' along an axis for
 * scale 'sc' and crop length 'len':  s = max(sc (o + 0.5) - 0.5, 0),
 * <p>0 = floor(s), <p>1 = min(<p>0 + 1, len - 1), l<p> = s - <p>0. */
static void src_index(DnGpuGen *G, const char *p, const char *o, const char *sc, const char *len)
{
    dn_gk_line(G, "    float s%s = %s * ((float)%s + 0.5f) - 0.5f;", p, sc, o);
    dn_gk_line(G, "    s%s = s%s < 0.0f ? 0.0f : s%s;", p, p, p);
    dn_gk_line(G, "    i64 %s0 = (i64)s%s, %s1 = %s0 + (%s0 < %s - 1 ? 1 : 0);", p, p, p, p, p, len);
    dn_gk_line(G, "    float l%s = s%s - (float)%s0;", p, p, p);
}

void dn_gpu_kernel_random_resized_crop(DnGpuGen *G)
{
    Aug a = begin(G, false);
    rrc_params(G, &a);
    dn_gk_line(G, "i64 top = crop[0], left = crop[1], ch = crop[2], cw = crop[3];");
    dn_gk_line(G, "float sch = (float)ch / %s, scw = (float)cw / %s;", dn_gk_float(G, (float)a.h),
               dn_gk_float(G, (float)a.w));
    for_elements(G, &a, true);
    src_index(G, "y", "i", "sch", "ch");
    src_index(G, "x", "j", "scw", "cw");
    dn_gk_line(G, "    GLOBAL const float *cp = xs + c * %lld + top * %lld + left;", LL(a.H * a.W), LL(a.W));
    dn_gk_line(G, "    GLOBAL const float *r0 = cp + y0 * %lld, *r1 = cp + y1 * %lld;", LL(a.W), LL(a.W));
    dn_gk_line(G, "    float tv = (1.0f - lx) * r0[x0] + lx * r0[x1];");
    dn_gk_line(G, "    float bv = (1.0f - lx) * r1[x0] + lx * r1[x1];");
    dn_gk_line(G, "    ys[e] = (1.0f - ly) * tv + ly * bv;");
    dn_gk_line(G, "}");
    end(G, &a);
}

/* ---- color_jitter ----------------------------------------------------------------- */

/* (float)(1 - s + 2 s u(w)) as text. */
static void jitter_factor(DnGpuGen *G, const char *name, double s, const char *w)
{
    dn_gk_line(G, "float %s = (float)(%s + %s * %s);", name, dn_gk_double(G, 1 - s), dn_gk_double(G, 2 * s),
               unit(G, w));
}

void dn_gpu_kernel_color_jitter(DnGpuGen *G)
{
    Aug a = begin(G, true);
    /* the sample's sum in double: strided partial sums, then a tree */
    dn_gk_line(G, "LOCAL double part[%d];", GROUP);
    dn_gk_line(G, "double sum = 0.0;");
    dn_gk_line(G, "for (i64 e = LOCAL_ID; e < %lld; e += %d) sum += (double)xs[e];", LL(a.S), GROUP);
    dn_gk_line(G, "part[LOCAL_ID] = sum;");
    dn_gk_line(G, "BARRIER();");
    dn_gk_line(G, "for (int k = %d; k > 0; k >>= 1) {", GROUP / 2);
    dn_gk_line(G, "    if (LOCAL_ID < k) part[LOCAL_ID] += part[LOCAL_ID + k];");
    dn_gk_line(G, "    BARRIER();");
    dn_gk_line(G, "}");
    dn_gk_line(G, "double mean = part[0] / %s;", dn_gk_double(G, (double)a.S));
    draw(G, "r", "0");
    jitter_factor(G, "fb", dn_op_float(G->op, "brightness"), "r[0]");
    jitter_factor(G, "fc", dn_op_float(G->op, "contrast"), "r[1]");
    dn_gk_line(G, "float m = (float)((double)fb * mean);");
    for_elements(G, &a, false);
    dn_gk_line(G, "    ys[e] = (fb * xs[e] - m) * fc + m;");
    dn_gk_line(G, "}");
    end(G, &a);
}

/* ---- pca_lighting ------------------------------------------------------------------ */

void dn_gpu_kernel_pca_lighting(DnGpuGen *G)
{
    const DnOp *op = G->op;
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
    Aug a = begin(G, false);
    dn_gk_line(G, "LOCAL float shift[3];");
    dn_gk_line(G, "if (LOCAL_ID == 0) {");
    draw(G, "r", "0");
    /* Box-Muller in double: R = sqrt(-2 log(1 - u)) */
    dn_gk_line(G, "    double rad0 = sqrt(-2.0 * log(1.0 - %s)), rad1 = sqrt(-2.0 * log(1.0 - %s));", unit(G, "r[0]"),
               unit(G, "r[2]"));
    dn_gk_line(G, "    double th0 = %s * %s, th1 = %s * %s;", dn_gk_double(G, TWO_PI), unit(G, "r[1]"),
               dn_gk_double(G, TWO_PI), unit(G, "r[3]"));
    dn_gk_line(G, "    double al0 = %s * (rad0 * cos(th0));", dn_gk_double(G, sd));
    dn_gk_line(G, "    double al1 = %s * (rad0 * sin(th0));", dn_gk_double(G, sd));
    dn_gk_line(G, "    double al2 = %s * (rad1 * cos(th1));", dn_gk_double(G, sd));
    for (int c = 0; c < 3; c++)
        dn_gk_line(G, "    shift[%d] = (float)(((0.0 + %s * al0 * %s) + %s * al1 * %s) + %s * al2 * %s);", c,
                   dn_gk_double(G, vec[c][0]), dn_gk_double(G, ev[0]), dn_gk_double(G, vec[c][1]),
                   dn_gk_double(G, ev[1]), dn_gk_double(G, vec[c][2]), dn_gk_double(G, ev[2]));
    dn_gk_line(G, "}");
    dn_gk_line(G, "BARRIER();");
    for_elements(G, &a, false);
    dn_gk_line(G, "    ys[e] = xs[e] + shift[e / %lld];", LL(a.h * a.w));
    dn_gk_line(G, "}");
    end(G, &a);
}
