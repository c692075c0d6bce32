/* test_augment.c -- the training-only augmentations (ops.def: random_flip,
 * random_crop, random_resized_crop, color_jitter, pca_lighting).
 *
 * Kernels: each case builds a one-op graph whose result is the graph's
 * output (as test_llvm_kernels.c does; no pass runs: dn_module_plan, then
 * dn_build_library with the "cpu" backend), runs it for a batch, and
 * compares with the formula of
 * ops.def evaluated here in C with dnrt_philox4x32: exact for flips and
 * crops, |got - ref| <= 1e-4 max|ref| + 1e-5 for the others.  Also: the
 * draws are per sample, keyed by seed, flips happen at rate p, the
 * fallback centre crop and the identity crop.
 * End to end (dnnc on .dnn text): the augment line reaches the compiled
 * training step keyed by the step counter, and vanishes from inference.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "passes/pipeline.h"
#include "ref_ops.h"
#include "runtime/safetensors.h"
#include "testlib.h"

/* ---- one-op graphs through the backend ---------------------------------- */

typedef struct Case {
    DnCtx cx;
    DnGraph *g;
    DnArena a;
    DnModule m;
    void *lib;
    const dnrt_model_desc *d;
    char dir[256];
    int64_t C, H, W, h, w;
} Case;

/* Builds y = KIND(x) for x f32[N, C, H, W] and compiles it. */
static void build_case(Case *t, DnOpKind kind, int64_t C, int64_t H, int64_t W, int nattrs, const DnAttr *at)
{
    memset(t, 0, sizeof *t);
    dn_ctx_init(&t->cx);
    t->g = dn_graph_new("aug");
    DnLoc loc = {0};
    DnShape s = {.rank = 4, .dim = {DN_DIM_N, C, H, W}};
    DnValue *x = dn_graph_add_input(t->g, "x", DN_DTYPE_F32, &s, loc);
    DnValue *y = dn_build1(&t->cx, t->g, kind, 1, &x, nattrs, at, loc);
    if (!y) dn_ctx_print_diags(&t->cx, stderr);
    cr_assert_not_null(y, "builder rejected %s", dn_op_info[kind].name);
    dn_graph_add_output(t->g, "y", y);
    t->C = C, t->H = H, t->W = W, t->h = y->shape.dim[2], t->w = y->shape.dim[3];
    t->m = (DnModule){.name = "aug", .infer = t->g};
    DnCompileOptions copt = {.workspace = dn_backend_lookup(dn_test_target())->workspace};
    dn_module_plan(&t->m, &t->a, &copt); /* the target's kernels may ask for workspace */
    snprintf(t->dir, sizeof t->dir, "/tmp/dnnc-aug-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    char so[300];
    snprintf(so, sizeof so, "%s/m.so", t->dir);
    DnBackendOptions o = {.opt_level = 3};
    DnStatus rc = dn_build_library(&t->cx, dn_backend_lookup(dn_test_target()), &t->m, &o, DNNC_RUNTIME_LIB, so);
    if (rc != DN_OK) dn_ctx_print_diags(&t->cx, stderr);
    cr_assert_eq(rc, DN_OK, "compile failed");
    t->lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(t->lib, "dlopen: %s", dlerror());
    t->d = dlsym(t->lib, "dnnc_descriptor");
    cr_assert_not_null(t->d);
}

/* Runs the op on 'x' (n samples) in a session with 'seed' (step 0); returns y (caller frees). */
static float *run_case(Case *t, int64_t n, const float *x, uint64_t seed)
{
    dnrt_options opt = {.threads = 2, .seed = seed};
    dnrt_error err = {0};
    dnrt_session *s = t->d->api->create(t->d, &opt, &err);
    cr_assert_not_null(s, "create: %s", err.message);
    float *y = malloc(sizeof(float) * (size_t)(n * t->C * t->h * t->w));
    const void *ip[1] = {x};
    void *op[1] = {y};
    cr_assert_eq(t->d->api->infer(s, n, ip, op, &err), 0, "infer: %s", err.message);
    t->d->api->destroy(s);
    return y;
}

static void finish(Case *t)
{
    if (t->lib) dlclose(t->lib);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    dn_test_run(cmd, NULL, 0);
    dn_graph_free(t->g);
    dn_arena_free(&t->a);
    dn_ctx_free(&t->cx);
}

static float *inputs(int64_t count, uint32_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)count);
    ref_fill(x, count, seed, -2, 2);
    return x;
}

/* ---- the formulas of ops.def, in C ---------------------------------------- */

typedef struct Key {
    uint64_t seed;
    uint32_t step, salt;
} Key;

static void words(Key k, int64_t n, uint32_t d, uint32_t r[4])
{
    uint32_t key[2] = {(uint32_t)k.seed, (uint32_t)(k.seed >> 32)}, ctr[4] = {(uint32_t)n, d, k.step, k.salt};
    dnrt_philox4x32(key, ctr, r);
}

static double unit(uint32_t w) { return w * 0x1p-32; }
static int64_t randint(uint32_t w, int64_t m) { return (int64_t)(((uint64_t)w * (uint64_t)m) >> 32); }

static bool ref_flipped(Key k, int64_t n, double p)
{
    uint32_t r[4];
    words(k, n, 0, r);
    return unit(r[0]) < p;
}

static void ref_flip(Key k, double p, const float *x, float *y, int64_t N, int64_t C, int64_t H, int64_t W)
{
    for (int64_t n = 0; n < N; n++) {
        bool f = ref_flipped(k, n, p);
        for (int64_t r = 0; r < C * H; r++)
            for (int64_t j = 0; j < W; j++) y[(n * C * H + r) * W + j] = x[(n * C * H + r) * W + (f ? W - 1 - j : j)];
    }
}

static void ref_crop(Key k, int64_t pad, int64_t h, int64_t w, const float *x, float *y, int64_t N, int64_t C,
                     int64_t H, int64_t W)
{
    for (int64_t n = 0; n < N; n++) {
        uint32_t r[4];
        words(k, n, 0, r);
        int64_t top = randint(r[0], H + 2 * pad - h + 1), left = randint(r[1], W + 2 * pad - w + 1);
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < h; i++)
                for (int64_t j = 0; j < w; j++) {
                    int64_t sy = top + i - pad, sx = left + j - pad;
                    bool in = sy >= 0 && sy < H && sx >= 0 && sx < W;
                    y[((n * C + c) * h + i) * w + j] = in ? x[((n * C + c) * H + sy) * W + sx] : 0.0f;
                }
    }
}

typedef struct Rrc {
    double s0, s1, q0, q1;
} Rrc;

/* torchvision's get_params, as ops.def words it. */
static void rrc_params(Key k, Rrc a, int64_t n, int64_t H, int64_t W, int64_t *top, int64_t *left, int64_t *ch,
                       int64_t *cw)
{
    double l0 = log(a.q0), l1 = log(a.q1);
    for (uint32_t t = 0; t < 10; t++) {
        uint32_t r[4];
        words(k, n, t, r);
        double area = (double)(H * W) * (a.s0 + unit(r[0]) * (a.s1 - a.s0));
        double ar = exp(l0 + unit(r[1]) * (l1 - l0));
        int64_t w = (int64_t)round(sqrt(area * ar)), h = (int64_t)round(sqrt(area / ar));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            *cw = w, *ch = h, *top = randint(r[2], H - h + 1), *left = randint(r[3], W - w + 1);
            return;
        }
    }
    double in_ratio = (double)W / (double)H;
    *cw = W, *ch = H;
    if (in_ratio < a.q0)
        *ch = (int64_t)round((double)W / a.q0);
    else if (in_ratio > a.q1)
        *cw = (int64_t)round((double)H * a.q1);
    *top = (H - *ch) / 2, *left = (W - *cw) / 2;
}

static void src_index(int64_t o, float scale, int64_t len, int64_t *i0, int64_t *i1, float *l)
{
    float s = scale * ((float)o + 0.5f) - 0.5f;
    if (s < 0) s = 0;
    *i0 = (int64_t)s;
    *i1 = *i0 + (*i0 < len - 1);
    *l = s - (float)*i0;
}

static void ref_rrc(Key k, Rrc a, int64_t h, int64_t w, const float *x, float *y, int64_t N, int64_t C, int64_t H,
                    int64_t W)
{
    for (int64_t n = 0; n < N; n++) {
        int64_t top, left, ch, cw;
        rrc_params(k, a, n, H, W, &top, &left, &ch, &cw);
        float sh = (float)ch / (float)h, sw = (float)cw / (float)w;
        for (int64_t c = 0; c < C; c++) {
            const float *xc = x + ((n * C + c) * H + top) * W + left;
            for (int64_t i = 0; i < h; i++) {
                int64_t y0, y1, x0, x1;
                float ly, lx;
                src_index(i, sh, ch, &y0, &y1, &ly);
                for (int64_t j = 0; j < w; j++) {
                    src_index(j, sw, cw, &x0, &x1, &lx);
                    float t = (1 - lx) * xc[y0 * W + x0] + lx * xc[y0 * W + x1];
                    float b = (1 - lx) * xc[y1 * W + x0] + lx * xc[y1 * W + x1];
                    y[((n * C + c) * h + i) * w + j] = (1 - ly) * t + ly * b;
                }
            }
        }
    }
}

static void ref_jitter(Key k, double bs, double cs, const float *x, float *y, int64_t N, int64_t S)
{
    for (int64_t n = 0; n < N; n++) {
        uint32_t r[4];
        words(k, n, 0, r);
        float fb = (float)(1 - bs + 2 * bs * unit(r[0])), fc = (float)(1 - cs + 2 * cs * unit(r[1]));
        double sum = 0;
        for (int64_t e = 0; e < S; e++) sum += x[n * S + e];
        float m = (float)((double)fb * (sum / (double)S));
        for (int64_t e = 0; e < S; e++) y[n * S + e] = (fb * x[n * S + e] - m) * fc + m;
    }
}

static const double pca_val[3] = {0.2175, 0.0188, 0.0045};
static const double pca_vec[3][3] = {
    {-0.5675, 0.7192, 0.4009}, {-0.5808, -0.0045, -0.8140}, {-0.5836, -0.6948, 0.4203}};

static void pca_shift(Key k, double sd, int64_t n, float shift[3])
{
    uint32_t r[4];
    words(k, n, 0, r);
    double R0 = sqrt(-2 * log(1 - unit(r[0]))), R2 = sqrt(-2 * log(1 - unit(r[2])));
    double t0 = 6.283185307179586476925 * unit(r[1]), t1 = 6.283185307179586476925 * unit(r[3]);
    double alpha[3] = {sd * (R0 * cos(t0)), sd * (R0 * sin(t0)), sd * (R2 * cos(t1))};
    for (int c = 0; c < 3; c++) {
        double s = 0;
        for (int i = 0; i < 3; i++) s += pca_vec[c][i] * alpha[i] * pca_val[i];
        shift[c] = (float)s;
    }
}

static void ref_pca(Key k, double sd, const float *x, float *y, int64_t N, int64_t HW)
{
    for (int64_t n = 0; n < N; n++) {
        float sh[3];
        pca_shift(k, sd, n, sh);
        for (int c = 0; c < 3; c++)
            for (int64_t e = 0; e < HW; e++) y[(n * 3 + c) * HW + e] = x[(n * 3 + c) * HW + e] + sh[c];
    }
}

static int64_t count_diff(const float *a, const float *b, int64_t n)
{
    int64_t d = 0;
    for (int64_t i = 0; i < n; i++) d += a[i] != b[i];
    return d;
}

/* ---- kernels against the formulas ------------------------------------------ */

#define SALT 7

Test(augment, random_flip_matches_formula_and_rate)
{
    Case t;
    DnAttr at[2] = {dn_attr_float("p", 0.3), dn_attr_int("salt", SALT)};
    build_case(&t, DN_OP_RANDOM_FLIP, 2, 3, 5, 2, at);
    int64_t N = 4000, S = 2 * 3 * 5;
    float *x = inputs(N * S, 1), *ref = malloc(sizeof(float) * (size_t)(N * S));
    float *y = run_case(&t, N, x, 42), *y2 = run_case(&t, N, x, 42), *y3 = run_case(&t, N, x, 43);
    ref_flip((Key){42, 0, SALT}, 0.3, x, ref, N, 2, 3, 5);
    cr_expect_eq(count_diff(y, ref, N * S), 0, "random_flip differs from the formula");
    cr_expect_eq(count_diff(y, y2, N * S), 0, "same seed, different flips");
    cr_expect_gt(count_diff(y, y3, N * S), N * S / 10, "seeds 42 and 43 flip the same samples");
    int64_t flips = 0;
    for (int64_t n = 0; n < N; n++) flips += y[n * S] != x[n * S];
    double rate = (double)flips / (double)N;
    cr_expect(fabs(rate - 0.3) < 5 * sqrt(0.3 * 0.7 / (double)N), "flip rate %.4f, expected 0.3", rate);
    free(x), free(ref), free(y), free(y2), free(y3);
    finish(&t);
}

Test(augment, random_crop_is_a_shifted_window)
{
    Case t;
    int64_t size[2] = {6, 6};
    DnAttr at[3] = {dn_attr_ints("size", 2, size), dn_attr_int("pad", 2), dn_attr_int("salt", SALT)};
    build_case(&t, DN_OP_RANDOM_CROP, 3, 6, 6, 3, at);
    int64_t N = 64, S = 3 * 6 * 6;
    float *x = inputs(N * S, 2), *ref = malloc(sizeof(float) * (size_t)(N * S));
    for (int64_t i = 0; i < N * S; i++) x[i] += 3; /* never 0: zeros in y are padding */
    float *y = run_case(&t, N, x, 5);
    ref_crop((Key){5, 0, SALT}, 2, 6, 6, x, ref, N, 3, 6, 6);
    cr_expect_eq(count_diff(y, ref, N * S), 0, "random_crop differs from the formula");
    /* every sample is x shifted by (dy, dx) in [-2, 2]^2 with zero fill; offsets vary */
    int seen[5][5] = {{0}};
    for (int64_t n = 0; n < N; n++) {
        int found = 0;
        for (int dy = -2; dy <= 2 && !found; dy++)
            for (int dx = -2; dx <= 2 && !found; dx++) {
                bool ok = true;
                for (int64_t c = 0; c < 3 && ok; c++)
                    for (int64_t i = 0; i < 6 && ok; i++)
                        for (int64_t j = 0; j < 6 && ok; j++) {
                            int64_t sy = i + dy, sx = j + dx;
                            float want =
                                sy >= 0 && sy < 6 && sx >= 0 && sx < 6 ? x[((n * 3 + c) * 6 + sy) * 6 + sx] : 0;
                            ok = y[((n * 3 + c) * 6 + i) * 6 + j] == want;
                        }
                if (ok) found = 1, seen[dy + 2][dx + 2]++;
            }
        cr_expect(found, "sample %lld is not a shifted window of its input", (long long)n);
    }
    int distinct = 0;
    for (int i = 0; i < 25; i++) distinct += seen[i / 5][i % 5] > 0;
    cr_expect_gt(distinct, 8, "only %d distinct offsets over %lld samples", distinct, (long long)N);
    free(x), free(ref), free(y);
    finish(&t);
}

Test(augment, random_crop_to_a_smaller_size)
{
    Case t;
    int64_t size[2] = {3, 4};
    DnAttr at[3] = {dn_attr_ints("size", 2, size), dn_attr_int("pad", 1), dn_attr_int("salt", SALT)};
    build_case(&t, DN_OP_RANDOM_CROP, 2, 5, 7, 3, at);
    int64_t N = 9;
    float *x = inputs(N * 2 * 5 * 7, 3), *ref = malloc(sizeof(float) * (size_t)(N * 2 * 3 * 4));
    float *y = run_case(&t, N, x, 9);
    ref_crop((Key){9, 0, SALT}, 1, 3, 4, x, ref, N, 2, 5, 7);
    cr_expect_eq(count_diff(y, ref, N * 2 * 3 * 4), 0, "random_crop [3, 4] differs from the formula");
    free(x), free(ref), free(y);
    finish(&t);
}

static void rrc_case(int64_t C, int64_t H, int64_t W, int64_t h, int64_t w, Rrc a, int64_t N, uint64_t seed)
{
    Case t;
    int64_t size[2] = {h, w};
    DnAttr at[6] = {dn_attr_ints("size", 2, size),    dn_attr_float("scale_min", a.s0),
                    dn_attr_float("scale_max", a.s1), dn_attr_float("ratio_min", a.q0),
                    dn_attr_float("ratio_max", a.q1), dn_attr_int("salt", SALT)};
    build_case(&t, DN_OP_RANDOM_RESIZED_CROP, C, H, W, 6, at);
    float *x = inputs(N * C * H * W, 4), *ref = malloc(sizeof(float) * (size_t)(N * C * h * w));
    float *y = run_case(&t, N, x, seed);
    ref_rrc((Key){seed, 0, SALT}, a, h, w, x, ref, N, C, H, W);
    dn_test_expect_close("random_resized_crop", y, ref, N * C * h * w, 1e-4, 1e-5);
    free(x), free(ref), free(y);
    finish(&t);
}

Test(augment, random_resized_crop_matches_formula)
{
    rrc_case(3, 12, 12, 12, 12, (Rrc){0.08, 1, 0.75, 4.0 / 3}, 32, 11);
    rrc_case(2, 9, 14, 5, 8, (Rrc){0.3, 0.9, 0.5, 2}, 16, 12);
}

/* All ten tries fail (the crop is wider than the image): the centre crop of
 * aspect ratio 2, H/2 rows, resized to the full size. */
Test(augment, random_resized_crop_falls_back_to_centre)
{
    rrc_case(1, 8, 8, 8, 8, (Rrc){1, 1, 2, 2}, 4, 3);
    int64_t top, left, ch, cw;
    rrc_params((Key){3, 0, SALT}, (Rrc){1, 1, 2, 2}, 0, 8, 8, &top, &left, &ch, &cw);
    cr_expect(top == 2 && left == 0 && ch == 4 && cw == 8, "fallback crop %lld,%lld %lldx%lld", (long long)top,
              (long long)left, (long long)ch, (long long)cw);
}

/* scale = ratio = 1 on a square image: the whole image, resized onto itself. */
Test(augment, random_resized_crop_identity)
{
    Case t;
    int64_t size[2] = {7, 7};
    DnAttr at[6] = {dn_attr_ints("size", 2, size), dn_attr_float("scale_min", 1), dn_attr_float("scale_max", 1),
                    dn_attr_float("ratio_min", 1), dn_attr_float("ratio_max", 1), dn_attr_int("salt", SALT)};
    build_case(&t, DN_OP_RANDOM_RESIZED_CROP, 2, 7, 7, 6, at);
    float *x = inputs(5 * 2 * 49, 6), *y = run_case(&t, 5, x, 1);
    cr_expect_eq(count_diff(x, y, 5 * 2 * 49), 0, "the full-image crop is not the identity");
    free(x), free(y);
    finish(&t);
}

Test(augment, color_jitter_matches_formula)
{
    Case t;
    DnAttr at[3] = {dn_attr_float("brightness", 0.4), dn_attr_float("contrast", 0.6), dn_attr_int("salt", SALT)};
    build_case(&t, DN_OP_COLOR_JITTER, 3, 5, 4, 3, at);
    int64_t N = 13, S = 3 * 5 * 4;
    float *x = inputs(N * S, 7), *ref = malloc(sizeof(float) * (size_t)(N * S));
    float *y = run_case(&t, N, x, 77);
    ref_jitter((Key){77, 0, SALT}, 0.4, 0.6, x, ref, N, S);
    dn_test_expect_close("color_jitter", y, ref, N * S, 1e-4, 1e-5);
    /* the per-sample factors differ: y / x is not one constant over the batch */
    double m0 = 0, m1 = 0;
    for (int64_t e = 0; e < S; e++) m0 += y[e] - x[e], m1 += y[S + e] - x[S + e];
    cr_expect(fabs(m0 - m1) > 1e-3, "samples 0 and 1 got the same jitter");
    free(x), free(ref), free(y);
    finish(&t);
}

Test(augment, pca_lighting_matches_formula)
{
    Case t;
    DnAttr at[2] = {dn_attr_float("std", 0.5), dn_attr_int("salt", SALT)};
    build_case(&t, DN_OP_PCA_LIGHTING, 3, 4, 6, 2, at);
    int64_t N = 200, S = 3 * 4 * 6;
    float *x = inputs(N * S, 8), *ref = malloc(sizeof(float) * (size_t)(N * S));
    float *y = run_case(&t, N, x, 8);
    ref_pca((Key){8, 0, SALT}, 0.5, x, ref, N, 24);
    dn_test_expect_close("pca_lighting", y, ref, N * S, 1e-4, 1e-5);
    /* alpha ~ N(0, std): the first component's shift of channel 0 has spread ~ std * 0.2175 * 0.5675 */
    double s2 = 0;
    for (int64_t n = 0; n < N; n++) {
        float sh[3];
        pca_shift((Key){8, 0, SALT}, 0.5, n, sh);
        s2 += (double)sh[0] * sh[0];
    }
    double rms = sqrt(s2 / (double)N),
           want = 0.5 * sqrt(pow(0.2175 * 0.5675, 2) + pow(0.0188 * 0.7192, 2) + pow(0.0045 * 0.4009, 2));
    cr_expect(fabs(rms - want) < 0.25 * want, "shift rms %g, expected about %g", rms, want);
    free(x), free(ref), free(y);
    finish(&t);
}

Test(augment, shape_rules_reject_bad_attributes)
{
    DnCtx cx;
    dn_ctx_init(&cx);
    DnGraph *g = dn_graph_new("bad");
    DnLoc loc = {0};
    DnShape s4 = {.rank = 4, .dim = {DN_DIM_N, 1, 4, 4}}, s2 = {.rank = 2, .dim = {DN_DIM_N, 16}};
    DnValue *x = dn_graph_add_input(g, "x", DN_DTYPE_F32, &s4, loc),
            *f = dn_graph_add_input(g, "f", DN_DTYPE_F32, &s2, loc);
    int64_t big[2] = {9, 9};
    DnAttr crop[2] = {dn_attr_ints("size", 2, big), dn_attr_int("pad", 2)};
    cr_expect_null(dn_build1(&cx, g, DN_OP_RANDOM_CROP, 1, &x, 2, crop, loc));
    cr_expect_null(dn_build1(&cx, g, DN_OP_PCA_LIGHTING, 1, &x, 0, NULL, loc)); /* 1 channel */
    cr_expect_null(dn_build1(&cx, g, DN_OP_RANDOM_FLIP, 1, &f, 0, NULL, loc));  /* 2-d */
    DnAttr p = dn_attr_float("p", 1.5);
    cr_expect_null(dn_build1(&cx, g, DN_OP_RANDOM_FLIP, 1, &x, 1, &p, loc));
    DnAttr jit = dn_attr_float("brightness", -0.1);
    cr_expect_null(dn_build1(&cx, g, DN_OP_COLOR_JITTER, 1, &x, 1, &jit, loc));
    cr_expect_eq(cx.nerr, 5);
    cr_expect_not_null(dn_build1(&cx, g, DN_OP_RANDOM_FLIP, 1, &x, 0, NULL, loc));
    cr_expect_not_null(dn_build1(&cx, g, DN_OP_COLOR_JITTER, 1, &x, 0, NULL, loc));
    dn_graph_free(g);
    dn_ctx_free(&cx);
}

/* ---- end to end through dnnc --------------------------------------------------- */

/* y = x + w with w = 0 and t = 0, so loss = mean(x_aug^2) and
 * d loss / d w = 2 sum_n x_aug[n] / (N C H W): SGD's momentum buffer after a
 * step at lr 0 shows the batch's augmented inputs. */
static const char *e2e_src = "model m(x: f32[N, 2, 6, 6]) -> (y: f32[N, 2, 6, 6]) {\n"
                             "  param w: f32[1, 2, 6, 6] = zeros\n"
                             "  y = x + w\n}\n"
                             "train m {\n  t: f32[N, 2, 6, 6]\n"
                             "  augment x: random_crop(6, pad=2) |> random_flip\n"
                             "  loss = mse(y, t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n";

static float *momentum_buffer(const DnTestLib *lib, dnrt_session *s)
{
    dnrt_error err = {0};
    char path[600];
    snprintf(path, sizeof path, "%s.aug.safetensors", lib->so_path);
    cr_assert_eq(lib->desc->api->save(s, path, &err), 0, "save: %s", err.message);
    dnrt_st_file f;
    cr_assert_eq(dnrt_st_read(path, &f, &err), 0, "%s", err.message);
    const dnrt_st_tensor *t = dnrt_st_find(&f, "optim.w.momentum_buffer");
    cr_assert_not_null(t);
    float *b = malloc(t->nbytes);
    memcpy(b, t->data, t->nbytes);
    dnrt_st_free(&f);
    unlink(path);
    return b;
}

/* The gradient at 'step' of e2e_src for input 'x': crop (salt 1), then flip (salt 2). */
static void e2e_grad(const float *x, int64_t N, uint64_t seed, uint32_t step, float *g)
{
    int64_t S = 72;
    float *a = malloc(sizeof(float) * (size_t)(N * S)), *b = malloc(sizeof(float) * (size_t)(N * S));
    ref_crop((Key){seed, step, 1}, 2, 6, 6, x, a, N, 2, 6, 6);
    ref_flip((Key){seed, step, 2}, 0.5, a, b, N, 2, 6, 6);
    for (int64_t e = 0; e < S; e++) {
        double s = 0;
        for (int64_t n = 0; n < N; n++) s += b[n * S + e];
        g[e] = (float)(2 * s / (double)(N * S));
    }
    free(a), free(b);
}

Test(augment, end_to_end_training_step_and_inference)
{
    DnTestLib lib;
    char log[8192];
    cr_assert_eq(dn_test_compile_text(e2e_src, "", &lib, log, sizeof log), 0, "compile failed: %s", log);
    const int64_t N = 5, S = 72;
    float *x = inputs(N * S, 9), *t = calloc((size_t)(N * S), sizeof(float));
    const void *in[2] = {x, t};
    dnrt_options opt = {.threads = 2, .seed = 1234};
    dnrt_error err = {0};
    dnrt_session *s = lib.desc->api->create(lib.desc, &opt, &err);
    cr_assert_not_null(s, "create: %s", err.message);
    lib.desc->api->set_lr(s, 0);
    float loss, g0[72], g1[72], ref0[72], ref1[72];
    cr_assert_eq(lib.desc->api->train_step(s, N, in, &loss, &err), 0, "%s", err.message);
    float *b0 = momentum_buffer(&lib, s);
    cr_assert_eq(lib.desc->api->train_step(s, N, in, &loss, &err), 0, "%s", err.message);
    float *b1 = momentum_buffer(&lib, s);
    for (int e = 0; e < S; e++) g0[e] = b0[e], g1[e] = b1[e] - 0.9f * b0[e];
    e2e_grad(x, N, 1234, 0, ref0);
    e2e_grad(x, N, 1234, 1, ref1);
    dn_test_expect_close("augmented batch at step 0", g0, ref0, S, 1e-4, 1e-5);
    dn_test_expect_close("augmented batch at step 1", g1, ref1, S, 1e-4, 1e-5);
    cr_expect_gt(count_diff(ref0, ref1, S), S / 4, "steps 0 and 1 draw the same augmentation");
    /* inference sees the raw input: y = x + 0 */
    float *y = malloc(sizeof(float) * (size_t)(N * S));
    const void *xin[1] = {x};
    void *out[1] = {y};
    cr_assert_eq(lib.desc->api->infer(s, N, xin, out, &err), 0, "%s", err.message);
    cr_expect_eq(count_diff(x, y, N * S), 0, "inference is augmented");
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
    free(x), free(t), free(b0), free(b1), free(y);
}

static bool has_aug_op(const char *text)
{
    static const char *names[] = {"random_flip", "random_crop", "random_resized_crop", "color_jitter", "pca_lighting"};
    for (int i = 0; i < 5; i++)
        if (strstr(text, names[i])) return true;
    return false;
}

/* Every augmentation in a .dnn: in the training graph, gone from inference. */
Test(augment, inference_graph_has_no_augmentation)
{
    char dir[] = "/tmp/dnnc-augir-XXXXXX", path[300], cmd[800];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.dnn", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("model m(image: f32[N, 3, 8, 8]) -> (y: f32[N, 10]) {\n"
          "  y = image |> conv1: conv2d(4, kernel=3, pad=1) |> relu |> flatten |> fc: dense(10)\n}\n"
          "train m {\n  label: i32[N]\n"
          "  augment image: random_resized_crop(8) |> random_crop(8, pad=1)\n"
          "  augment image: random_flip(p=0.25) |> color_jitter(brightness=0.2, contrast=0.2) |> pca_lighting\n"
          "  loss = cross_entropy(y, label)\n  optimizer = sgd(lr=0.1)\n}\n",
          f);
    fclose(f);
    static char out[65536];
    snprintf(cmd, sizeof cmd, "%s --emit=ir-opt %s", DNNC_BIN, path);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect(!has_aug_op(out), "augmentation in the inference graph:\n%s", out);
    cr_expect(strstr(out, "conv2d %image"), "the inference model does not read the raw input:\n%s", out);
    snprintf(cmd, sizeof cmd, "%s --emit=ir-opt --graph=train %s", DNNC_BIN, path);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    const char *order[] = {
        "random_resized_crop %image", "random_crop", "random_flip", "color_jitter", "pca_lighting", "conv2d"};
    const char *at = out;
    for (int i = 0; i < 6; i++) {
        const char *p = strstr(at, order[i]);
        cr_expect_not_null(p, "training graph lacks '%s' after the previous stage:\n%s", order[i], out);
        if (p) at = p;
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    dn_test_run(cmd, NULL, 0);
}
