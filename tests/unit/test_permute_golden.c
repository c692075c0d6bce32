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

static const DnTestGoldenSpec spec = {"permute_goldens", params, NPARAMS, 2, {1, 4}, 4, RTOL, ATOL};

Test(permute_golden, outputs_match_pytorch_at_batch_1_and_4) { dn_test_golden_outputs(&spec); }
Test(permute_golden, loss_and_gradients_match_pytorch) { dn_test_golden_sgd_step(&spec); }
