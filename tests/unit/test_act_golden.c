/* test_act_golden.c -- leaky_relu, elu, gelu (both approximations) and
 * adaptive average and max pooling (uneven windows: 5x5 -> 3x3 and
 * 7x5 -> 3x2) against PyTorch's F.leaky_relu, F.elu, F.gelu,
 * F.adaptive_avg_pool2d and F.adaptive_max_pool2d
 * (tests/golden/make_act_goldens.py writes the references).
 *
 * The golden file carries the model's source in its metadata; the test
 * compiles exactly that with the real dnnc, loads the golden parameters,
 * compares every output at batch 1 and 4, then runs one SGD step on the
 * golden training batch and compares the loss and the gradients of the
 * parameters (SGD's momentum buffer after the first step is the gradient),
 * which flow back through every backward op under test; parameter c starts
 * at zeros in front of a max pool, leaky_relu and elu, so its gradient
 * shows the tie rule (the first maximal cell of each window) and their
 * slopes at exactly 0.
 * Tolerance: rtol 1e-4, atol 1e-5 (references are float64; PyTorch's own
 * fp32 run is within 1e-7 of them, make_act_goldens.py prints it).
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

static const char *const params[] = {"p", "q", "c"};
#define NPARAMS 3

static const DnTestGoldenSpec spec = {"act_goldens", params, NPARAMS, 10, {1, 4}, 4, RTOL, ATOL};

Test(act_golden, outputs_match_pytorch_at_batch_1_and_4) { dn_test_golden_outputs(&spec); }
Test(act_golden, loss_and_gradients_match_pytorch) { dn_test_golden_sgd_step(&spec); }
