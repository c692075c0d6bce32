/* test_philox.c -- Philox 4x32-10 against Random123's known-answer vectors
 * (kat_vectors, "philox4x32 10" lines), and the statistics of the state
 * initializers that draw from it (uniform bounds and moments, normal mean
 * and standard deviation over 100k samples), through a session. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "dnrt.h"

static void kat(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t e0, uint32_t e1,
                uint32_t e2, uint32_t e3)
{
    const uint32_t key[2] = {k0, k1}, ctr[4] = {c0, c1, c2, c3}, want[4] = {e0, e1, e2, e3};
    uint32_t out[4];
    dnrt_philox4x32(key, ctr, out);
    for (int i = 0; i < 4; i++) cr_assert_eq(out[i], want[i], "word %d: got %08x, want %08x", i, out[i], want[i]);
}

Test(philox, kat_zeros) { kat(0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8); }

Test(philox, kat_ones)
{
    uint32_t f = 0xffffffffu;
    kat(f, f, f, f, f, f, 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd);
}

Test(philox, kat_pi)
{
    kat(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
        0x24126ea1);
}

Test(philox, counter_and_key_change_everything)
{
    const uint32_t key[2] = {1, 2}, key2[2] = {1, 3}, c1[4] = {5, 0, 0, 0}, c2[4] = {6, 0, 0, 0};
    uint32_t a[4], b[4], c[4];
    dnrt_philox4x32(key, c1, a);
    dnrt_philox4x32(key, c2, b);
    dnrt_philox4x32(key2, c1, c);
    for (int i = 0; i < 4; i++) {
        cr_assert_neq(a[i], b[i]);
        cr_assert_neq(a[i], c[i]);
    }
}

/* ---- initializer statistics ---------------------------------------------- */

#define NS 100000
enum { OFF_U = 0, OFF_N = 400000, OFF_U2 = 800000, OFF_I = 1200000, OFF_ONES = 1200064, BYTES = 1200128 };

static int32_t nothing(const dnrt_call *c)
{
    (void)c;
    return 0;
}

static const dnrt_tensor_desc state[] = {
    {.name = "u",
     .dtype = DNRT_F32,
     .rank = 1,
     .dim = {NS},
     .offset = OFF_U,
     .init = DNRT_INIT_UNIFORM,
     .init_a = -0.25f,
     .init_b = 0.75f},
    {.name = "z",
     .dtype = DNRT_F32,
     .rank = 2,
     .dim = {250, 400},
     .offset = OFF_N,
     .init = DNRT_INIT_NORMAL,
     .init_a = 3.0f,
     .init_b = 0.5f},
    {.name = "u2",
     .dtype = DNRT_F32,
     .rank = 1,
     .dim = {NS},
     .offset = OFF_U2,
     .init = DNRT_INIT_UNIFORM,
     .init_a = -0.25f,
     .init_b = 0.75f},
    {.name = "i", .dtype = DNRT_I32, .rank = 1, .dim = {4}, .offset = OFF_I, .init = DNRT_INIT_ONES},
    {.name = "ones", .dtype = DNRT_F32, .rank = 1, .dim = {7}, .offset = OFF_ONES, .init = DNRT_INIT_ONES},
};
static const dnrt_tensor_desc io = {.name = "x", .dtype = DNRT_F32, .rank = 1, .dim = {-1}};
static const dnrt_model_desc desc = {
    .abi_version = DNRT_ABI_VERSION,
    .name = "init",
    .ninputs = 1,
    .inputs = &io,
    .noutputs = 1,
    .outputs = &io,
    .nstate = 5,
    .state = state,
    .state_bytes = BYTES,
    .infer = nothing,
    .api = &dnrt_api_v1,
};

static dnrt_session *make(uint64_t seed)
{
    dnrt_options opt = {.threads = 1, .seed = seed};
    dnrt_error err;
    dnrt_session *s = dnrt_session_create(&desc, &opt, &err);
    cr_assert_not_null(s, "%s", err.message);
    return s;
}

static void moments(const float *x, int n, double *mean, double *std)
{
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += x[i];
    m /= n;
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    *mean = m;
    *std = sqrt(v / n);
}

Test(init, uniform_bounds_and_moments)
{
    dnrt_session *s = make(12345);
    const float *u = dnrt_session_state(s, "u");
    float lo = 1, hi = -1;
    for (int i = 0; i < NS; i++) {
        cr_assert(u[i] >= -0.25f && u[i] < 0.75f, "u[%d] = %g", i, u[i]);
        lo = fminf(lo, u[i]);
        hi = fmaxf(hi, u[i]);
    }
    cr_assert(lo < -0.2499f && hi > 0.7499f, "range [%g, %g] not covered", lo, hi);
    double mean, std;
    moments(u, NS, &mean, &std);
    cr_assert(fabs(mean - 0.25) < 0.005, "mean %g", mean);
    cr_assert(fabs(std - 1.0 / sqrt(12.0)) < 0.005, "std %g", std);
    /* another tensor index is another stream */
    cr_assert(memcmp(u, dnrt_session_state(s, "u2"), NS * 4) != 0);
    dnrt_session_destroy(s);
}

Test(init, normal_mean_std_and_shape)
{
    dnrt_session *s = make(7);
    const float *z = dnrt_session_state(s, "z");
    double mean, std;
    moments(z, NS, &mean, &std);
    cr_assert(fabs(mean - 3.0) < 0.01, "mean %g", mean);
    cr_assert(fabs(std - 0.5) < 0.01, "std %g", std);
    int within = 0, far = 0;
    for (int i = 0; i < NS; i++) {
        double d = fabs(z[i] - 3.0) / 0.5;
        within += d < 1.0;
        far += d > 3.0;
        cr_assert(isfinite(z[i]));
    }
    cr_assert(fabs(within / (double)NS - 0.6827) < 0.01, "P(|z| < 1) = %g", within / (double)NS);
    cr_assert(far > 200 && far < 340, "%d samples beyond 3 sigma (expect ~270 of 100k)", far);
    dnrt_session_destroy(s);
}

Test(init, integers_zero_and_ones)
{
    dnrt_session *s = make(1);
    const int32_t *i = dnrt_session_state(s, "i");
    const float *o = dnrt_session_state(s, "ones");
    for (int k = 0; k < 4; k++) cr_assert_eq(i[k], 0);
    for (int k = 0; k < 7; k++) cr_assert_eq(o[k], 1.0f);
    dnrt_session_destroy(s);
}

Test(init, same_seed_same_values)
{
    dnrt_session *a = make(99), *b = make(99), *c = make(100);
    cr_assert(memcmp(dnrt_session_state(a, "z"), dnrt_session_state(b, "z"), NS * 4) == 0);
    cr_assert(memcmp(dnrt_session_state(a, "z"), dnrt_session_state(c, "z"), NS * 4) != 0);
    dnrt_session_destroy(a);
    dnrt_session_destroy(b);
    dnrt_session_destroy(c);
}
