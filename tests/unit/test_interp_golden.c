/* test_interp_golden.c -- interpolate (bilinear and nearest,
 * align_corners=False; up, down, same size and mixed) against PyTorch's
 * F.interpolate (tests/golden/make_interp_goldens.py writes the references).
 *
 * The golden file carries the model's source in its metadata; the test
 * compiles exactly that with the real dnnc, loads the golden parameter,
 * compares every output at batch 1 and 3, then runs one SGD step on the
 * golden training batch and compares the loss and the gradient of p (SGD's
 * momentum buffer after the first step), which flows back through every
 * interpolate_bwd.
 * Tolerance: rtol 1e-4, atol 1e-5 (the references are PyTorch's float32
 * run; a float64 run is within 3e-7 of it, make_interp_goldens.py prints it).
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

static const char *const params[] = {"p"};
#define NPARAMS 1

static const DnTestGoldenSpec spec = {"interp_goldens", params, NPARAMS, 7, {1, 3}, 3, RTOL, ATOL};

Test(interp_golden, outputs_match_pytorch_at_batch_1_and_3) { dn_test_golden_outputs(&spec); }
Test(interp_golden, loss_and_gradient_match_pytorch) { dn_test_golden_sgd_step(&spec); }
