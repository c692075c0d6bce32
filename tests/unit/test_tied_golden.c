/* test_tied_golden.c -- tied weights: one raw parameter read by
 * embedding(weight=...) and by dense(weight=...), against PyTorch's
 * F.embedding and F.linear on the same tensor, so the gradient the
 * optimizer sees is the sum of both uses' (tests/golden/make_tied_goldens.py
 * writes the references and carries the model's source).
 *
 * The test compiles exactly that source, loads 'shared', compares the
 * output at batch 1 and 4, then runs one SGD step and compares the loss and
 * shared's gradient (SGD's momentum buffer after the first step).
 * Tolerance: rtol 1e-4, atol 1e-5 (references are float64).
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "testlib.h"

static const char *const params[] = {"shared"};

static const DnTestGoldenSpec spec = {"tied_goldens", params, 1, 1, {1, 4}, 4, 1e-4, 1e-5};

Test(tied_golden, outputs_match_pytorch_at_batch_1_and_4) { dn_test_golden_outputs(&spec); }
Test(tied_golden, gradient_sums_both_uses_as_pytorch) { dn_test_golden_sgd_step(&spec); }
