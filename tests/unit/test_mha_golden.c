/* test_mha_golden.c -- multihead_attention against
 * nn.MultiheadAttention(8, 2, batch_first=True): self-attention with a
 * key_padding_mask and cross-attention with an attn_mask, the weights
 * loaded under PyTorch's own state_dict names (in_proj_weight,
 * in_proj_bias, out_proj.weight, out_proj.bias)
 * (tests/golden/make_mha_goldens.py writes the references and carries the
 * model's source).
 *
 * The test compiles exactly that source with the real dnnc, loads the
 * golden parameters, compares both outputs at batch 1 and 4, then runs one
 * SGD step on the golden batch and compares the loss and the gradients of
 * the eight module parameters (SGD's momentum buffer after the first step
 * is the gradient; the attn_mask is an input).  Also on OpenCL
 * (test_mha_golden_opencl).
 * Tolerance: rtol 1e-4, atol 1e-5 (references are float64).
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

static const char *const params[] = {"sa.in_proj_weight", "sa.in_proj_bias", "sa.out_proj.weight", "sa.out_proj.bias",
                                     "ca.in_proj_weight", "ca.in_proj_bias", "ca.out_proj.weight", "ca.out_proj.bias"};
#define NPARAMS 8

static const DnTestGoldenSpec spec = {"mha_goldens", params, NPARAMS, 2, {1, 4}, 4, RTOL, ATOL};

Test(mha_golden, outputs_match_pytorch_at_batch_1_and_4) { dn_test_golden_outputs(&spec); }
Test(mha_golden, loss_and_gradients_match_pytorch) { dn_test_golden_sgd_step(&spec); }
