/* test_sdpa_golden.c -- scaled_dot_product_attention against the
 * arithmetic of F.scaled_dot_product_attention over two heads: a key mask
 * broadcast from [N, 1, 1, Tk], and is_causal with a given scale over
 * sliced keys (tests/golden/make_sdpa_goldens.py writes the references and
 * carries the model's source).
 *
 * The test compiles exactly that source with the real dnnc, loads the
 * golden parameters, compares both outputs at batch 1 and 4, then runs one
 * SGD step on the golden batch and compares the loss and the gradients of
 * every parameter (SGD's momentum buffer after the first step is the
 * gradient), back through the batched matmuls, the mask and causal biases
 * and the softmax.  Also on OpenCL (test_sdpa_golden_opencl).
 * Tolerance: rtol 1e-4, atol 1e-5 (references are float64).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

static const char *const params[] = {"a", "b", "c"};
#define NPARAMS 3

static const DnTestGoldenSpec spec = {"sdpa_goldens", params, NPARAMS, 2, {1, 4}, 4, RTOL, ATOL};

Test(sdpa_golden, outputs_match_pytorch_at_batch_1_and_4) { dn_test_golden_outputs(&spec); }
Test(sdpa_golden, loss_and_gradients_match_pytorch) { dn_test_golden_sgd_step(&spec); }

/* positional_encoding adds the Transformer's table (PyTorch's tutorial
 * PositionalEncoding: div = exp(arange(0, D, 2) * -ln(10000) / D),
 * pe[:, 0::2] = sin(pos * div), pe[:, 1::2] = cos(pos * div)), here
 * against that formula in double, at positions up to 63 and D = 12;
 * x = j / 8 shows the add.  Within 2e-6: f32 rounding of a value <= 1. */
Test(sdpa_golden, positional_encoding_matches_the_formula)
{
    char msg[8192];
    DnTestLib lib;
    const char *src = "model pe(x: f32[N, 64, 12]) -> (y: f32[N, 64, 12]) {\n  y = x |> positional_encoding\n}\n";
    cr_assert_eq(dn_test_compile_text(src, "--no-train", &lib, msg, sizeof msg), 0, "%s", msg);
    dnrt_session *s = dn_test_session(&lib, 2, 1);
    static float x[2 * 64 * 12], y[2 * 64 * 12];
    for (int i = 0; i < 2 * 64 * 12; i++) x[i] = (float)(i % 12) / 8.0f;
    const void *in[1] = {x};
    void *out[1] = {y};
    dnrt_error err = {0};
    cr_assert_eq(lib.desc->api->infer(s, 2, in, out, &err), 0, "%s", err.message);
    double worst = 0;
    for (int n = 0; n < 2; n++)
        for (int p = 0; p < 64; p++)
            for (int j = 0; j < 12; j++) {
                double a = p * exp((double)(j - j % 2) * -log(10000.0) / 12.0);
                double want = (j % 2 ? cos(a) : sin(a)) + j / 8.0;
                worst = fmax(worst, fabs(y[(n * 64 + p) * 12 + j] - want));
            }
    cr_expect_leq(worst, 2e-6, "max |y - formula| = %g", worst);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}
