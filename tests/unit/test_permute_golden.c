/* test_permute_golden.c -- permute and expand against torch.permute and
 * torch.Tensor.expand: a ViT-style class token expanded to the batch and
 * concatenated in front of the patches, a 4-d permute, a parameter
 * expanded along a new leading axis and a size-1 one
 * (tests/golden/make_permute_goldens.py writes the references and carries
 * the model's source).
 *
 * The test compiles exactly that source with the real dnnc, loads the
 * golden parameters, compares both outputs at batch 1 and 4, then runs one
 * SGD step on the golden batch and compares the loss and the gradients of
 * every parameter (SGD's momentum buffer after the first step is the
 * gradient): expand's gradient sums over the expanded axes (the batch
 * included).  Also on OpenCL (test_permute_golden_opencl).
 * Tolerance: rtol 1e-4, atol 1e-5 (references are float64).
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

static const char *const params[] = {"cls", "p", "q", "fa.weight", "fa.bias"};
#define NPARAMS 5

Test(permute_golden, outputs_match_pytorch_at_batch_1_and_4)
{
    DnTestGoldenModel G;
    dn_test_golden_model_open(&G, "permute_goldens", params, NPARAMS);
    cr_assert_eq(G.lib.desc->noutputs, 2);
    for (int64_t n = 1; n <= 4; n += 3) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "b%lld", (long long)n);
        dn_test_expect_outputs(&G.lib, G.s, &G.g, prefix, n, RTOL, ATOL);
    }
    dn_test_golden_model_close(&G);
}

Test(permute_golden, loss_and_gradients_match_pytorch)
{
    DnTestGoldenModel G;
    dn_test_golden_model_open(&G, "permute_goldens", params, NPARAMS);
    dn_test_expect_sgd_step(&G, 4, params, NPARAMS, RTOL, ATOL);
    dn_test_golden_model_close(&G);
}
