/* test_norm_golden.c -- layernorm against PyTorch's nn.LayerNorm /
 * F.layer_norm: over the last axis with the affine, over the last two
 * (eps 1e-3), and without the affine (tests/golden/make_norm_goldens.py
 * writes the references and carries the model's source).
 *
 * The test compiles exactly that source with the real dnnc, loads the
 * golden parameters (random weights and biases, not the ones and zeros a
 * layernorm starts at), compares every output at batch 1 and 4, then runs
 * one SGD step on the golden batch and compares the loss and the gradients
 * of every parameter (SGD's momentum buffer after the first step is the
 * gradient): layernorm_bwd with and without a weight, and
 * layernorm_bwd_params.  Also on OpenCL (test_norm_golden_opencl).
 * Tolerance: rtol 1e-4, atol 1e-5 (references are float64; PyTorch's own
 * fp32 run is within 2e-7 of them, make_norm_goldens.py prints it).
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

static const char *const params[] = {"p", "ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias"};
#define NPARAMS 5

Test(norm_golden, outputs_match_pytorch_at_batch_1_and_4)
{
    DnTestGoldenModel G;
    dn_test_golden_model_open(&G, "norm_goldens", params, NPARAMS);
    cr_assert_eq(G.lib.desc->noutputs, 3);
    for (int64_t n = 1; n <= 4; n += 3) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "b%lld", (long long)n);
        dn_test_expect_outputs(&G.lib, G.s, &G.g, prefix, n, RTOL, ATOL);
    }
    dn_test_golden_model_close(&G);
}

Test(norm_golden, loss_and_gradients_match_pytorch)
{
    DnTestGoldenModel G;
    dn_test_golden_model_open(&G, "norm_goldens", params, NPARAMS);
    dn_test_expect_sgd_step(&G, 4, params, NPARAMS, RTOL, ATOL);
    dn_test_golden_model_close(&G);
}
