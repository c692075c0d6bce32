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
#include <stdio.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

static const char *const params[] = {"a", "b", "c"};
#define NPARAMS 3

Test(sdpa_golden, outputs_match_pytorch_at_batch_1_and_4)
{
    DnTestGoldenModel G;
    dn_test_golden_model_open(&G, "sdpa_goldens", params, NPARAMS);
    cr_assert_eq(G.lib.desc->noutputs, 2);
    for (int64_t n = 1; n <= 4; n += 3) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "b%lld", (long long)n);
        dn_test_expect_outputs(&G.lib, G.s, &G.g, prefix, n, RTOL, ATOL);
    }
    dn_test_golden_model_close(&G);
}

Test(sdpa_golden, loss_and_gradients_match_pytorch)
{
    DnTestGoldenModel G;
    dn_test_golden_model_open(&G, "sdpa_goldens", params, NPARAMS);
    dn_test_expect_sgd_step(&G, 4, params, NPARAMS, RTOL, ATOL);
    dn_test_golden_model_close(&G);
}
