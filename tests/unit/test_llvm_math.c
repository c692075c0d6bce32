/* test_llvm_math.c -- the inline exp, tanh and erf of the CPU kernels
 * (backends/llvm/llvm_math.c) against libm in double, through the ops that
 * use them: tanh directly, sigmoid = 1 / (1 + exp(-x)), which carries
 * exp's error (below x = -17, 1 + exp(-x) rounds to exp(-x), so sigmoid
 * is exp(x) up to one division), and the exact gelu x/2 (1 + erf(x/√2)),
 * which carries erf's.  A million points over [-90, 90] and the special
 * values of the contract in llvm_math.c's header. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "testlib.h"

enum { W = 4096, POINTS = 1 << 20 };

static DnTestLib lib;
static dnrt_session *sess;
static float *x, *t, *sg, *ge;

/* Error of 'got' in units of the last place of the f32 nearest 'ref'. */
static double ulps(float got, double ref)
{
    if (ref == 0) return got == 0 ? 0 : INFINITY;
    return fabs(got - ref) / ldexp(1.0, ilogb((float)ref) - 23);
}

static void run(int64_t n)
{
    const void *in[1] = {x};
    void *out[3] = {t, sg, ge};
    dnrt_error err = {0};
    cr_assert_eq(lib.desc->api->infer(sess, n, in, out, &err), 0, "%s", err.message);
}

static void setup(void)
{
    char log[4096];
    const char *src = "model m(x: f32[N, 4096]) -> (t: f32[N, 4096], s: f32[N, 4096], g: f32[N, 4096]) {\n"
                      "  t = tanh(x)\n  s = sigmoid(x)\n  g = gelu(x)\n}\n";
    cr_assert_eq(dn_test_compile_text(src, "--target=cpu", &lib, log, sizeof log), 0, "%s", log);
    sess = dn_test_session(&lib, 2, 1);
    x = calloc(POINTS, sizeof *x), t = calloc(POINTS, sizeof *t), sg = calloc(POINTS, sizeof *sg);
    ge = calloc(POINTS, sizeof *ge);
}

static void teardown(void)
{
    lib.desc->api->destroy(sess);
    dn_test_close(&lib);
    free(x), free(t), free(sg), free(ge);
}

TestSuite(llvm_math, .init = setup, .fini = teardown);

Test(llvm_math, tanh_and_sigmoid_within_their_ulp_bounds)
{
    for (int i = 0; i < POINTS; i++) x[i] = -90.0f + 180.0f * (float)i / POINTS;
    run(POINTS / W);
    double worst_t = 0, worst_s = 0;
    float at_t = 0, at_s = 0;
    for (int i = 0; i < POINTS; i++) {
        double ut = ulps(t[i], tanh((double)x[i]));
        if (ut > worst_t) worst_t = ut, at_t = x[i];
        if (x[i] < -87 || x[i] > 88) continue; /* exp's range of the contract */
        double us = ulps(sg[i], 1 / (1 + exp(-(double)x[i])));
        if (us > worst_s) worst_s = us, at_s = x[i];
    }
    cr_expect_leq(worst_t, 2.0, "tanh: %.2f ulp at x = %.9g", worst_t, at_t);
    /* exp's 2 ulp, plus the rounding of 1 + e and of the division */
    cr_expect_leq(worst_s, 3.0, "sigmoid: %.2f ulp at x = %.9g", worst_s, at_s);
}

/* erf's 3 ulp become an absolute error of |x|/2 * 3 ulp(1) in gelu; with the
 * rounding of x/√2 and of 1 + erf, |gelu - ref| <= 3e-7 |x| + 3 ulp(ref).
 * Where 1 + erf is not a cancellation (x >= 0) the error stays within 4 ulp. */
Test(llvm_math, gelu_carries_erf_within_its_bound)
{
    for (int i = 0; i < POINTS; i++) x[i] = -12.0f + 24.0f * (float)i / POINTS;
    run(POINTS / W);
    double worst = 0, worst_pos = 0;
    float at = 0, at_pos = 0;
    for (int i = 0; i < POINTS; i++) {
        double ref = 0.5 * x[i] * (1 + erf((double)x[i] / sqrt(2.0)));
        float rf = (float)ref; /* 0 at x = 0 and where ref underflows f32 */
        double bound = 3e-7 * fabs(x[i]) + (rf == 0 ? 0 : 3 * ldexp(1.0, ilogb(rf) - 23));
        double over = bound > 0 ? fabs(ge[i] - ref) / bound : ge[i] == 0 ? 0 : INFINITY;
        if (over > worst) worst = over, at = x[i];
        if (x[i] >= 0 && ulps(ge[i], ref) > worst_pos) worst_pos = ulps(ge[i], ref), at_pos = x[i];
    }
    cr_expect_leq(worst, 1.0, "gelu: %.2f of the bound at x = %.9g", worst, at);
    cr_expect_leq(worst_pos, 4.0, "gelu: %.2f ulp at x = %.9g", worst_pos, at_pos);
}

Test(llvm_math, special_values)
{
    static const float v[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-5f, 0.6249f, 0.6251f,
                              9.5f, -9.5f, 100.0f, -100.0f, 88.7f, -88.7f,  -87.0f};
    int n = (int)(sizeof v / sizeof v[0]);
    for (int i = 0; i < W; i++) x[i] = i < n ? v[i] : 0;
    for (int i = 0; i < n; i++) x[W + i] = -v[i];
    run(2);
    for (int i = 0; i < n; i++) {
        cr_expect_eq(t[W + i], -t[i], "tanh(-x) = -tanh(x) at %g", v[i]);
        cr_expect_leq(ulps(t[i], tanh((double)v[i])), 2.0, "tanh(%g) = %.9g", v[i], t[i]);
    }
    cr_expect_eq(t[0], 0.0f);
    cr_expect_eq(t[2], 1e-30f, "tanh keeps tiny arguments: %g", t[2]);
    cr_expect_eq(t[9], 1.0f);
    cr_expect_eq(sg[0], 0.5f);
    cr_expect_eq(sg[9], 1.0f, "sigmoid(100) = %.9g", sg[9]);
    cr_expect_eq(sg[10], 0.0f, "sigmoid(-100): exp(100) overflows f32, so 1 / inf = 0, got %g", sg[10]);
    /* exp(87) is finite: sigmoid(-87) is 1/exp(87), a normal f32; sigmoid(-88.7), a denormal, is >= 0 */
    cr_expect_leq(ulps(sg[13], 1 / (1 + exp(87.0))), 3.0, "sigmoid(-87) = %g", sg[13]);
    cr_expect(sg[12] > 0 && sg[12] < 1e-38f, "sigmoid(-88.7) = %g", sg[12]);
    cr_expect_eq(ge[9], 100.0f, "gelu(100) = %.9g", ge[9]);
    cr_expect_eq(ge[10], -0.0f, "gelu(-100) = %g", ge[10]);
    cr_expect_eq(ge[0], 0.0f);
    /* sigmoid(87) rounds to 1 */
    cr_expect_eq(sg[W + 13], 1.0f);
}
