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

static const DnTestGoldenSpec spec = {"norm_goldens", params, NPARAMS, 3, {1, 4}, 4, RTOL, ATOL};

Test(norm_golden, outputs_match_pytorch_at_batch_1_and_4) { dn_test_golden_outputs(&spec); }
Test(norm_golden, loss_and_gradients_match_pytorch) { dn_test_golden_sgd_step(&spec); }
