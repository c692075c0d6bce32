/* test_encoder_golden.c -- transformer_encoder_layer against
 * nn.TransformerEncoderLayer(batch_first=True): a post-norm relu layer with
 * a src_key_padding_mask followed by a pre-norm (norm_first) gelu layer
 * with its own layer_norm_eps, the weights loaded under PyTorch's
 * state_dict names (self_attn.*, linear1/2.*, norm1/2.*)
 * (tests/golden/make_encoder_goldens.py writes the references and carries
 * the model's source).
 *
 * The test compiles exactly that source with the real dnnc, loads the
 * golden parameters, compares the output at batch 1 and 4, then runs one
 * SGD step on the golden batch and compares the loss and the gradients of
 * all 24 parameters (SGD's momentum buffer after the first step is the
 * gradient).  Dropout is 0 (PyTorch's random stream is not dnnc's).  Also
 * on OpenCL (test_encoder_golden_opencl).
 * Tolerance: rtol 1e-4, atol 1e-5 (references are float64).
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

static const char *const params[] = {
    "enc1.self_attn.in_proj_weight",
    "enc1.self_attn.in_proj_bias",
    "enc1.self_attn.out_proj.weight",
    "enc1.self_attn.out_proj.bias",
    "enc1.linear1.weight",
    "enc1.linear1.bias",
    "enc1.linear2.weight",
    "enc1.linear2.bias",
    "enc1.norm1.weight",
    "enc1.norm1.bias",
    "enc1.norm2.weight",
    "enc1.norm2.bias",
    "enc2.self_attn.in_proj_weight",
    "enc2.self_attn.in_proj_bias",
    "enc2.self_attn.out_proj.weight",
    "enc2.self_attn.out_proj.bias",
    "enc2.linear1.weight",
    "enc2.linear1.bias",
    "enc2.linear2.weight",
    "enc2.linear2.bias",
    "enc2.norm1.weight",
    "enc2.norm1.bias",
    "enc2.norm2.weight",
    "enc2.norm2.bias",
};
#define NPARAMS 24

static const DnTestGoldenSpec spec = {"encoder_goldens", params, NPARAMS, 1, {1, 4}, 4, RTOL, ATOL};

Test(encoder_golden, outputs_match_pytorch_at_batch_1_and_4) { dn_test_golden_outputs(&spec); }
Test(encoder_golden, loss_and_gradients_match_pytorch) { dn_test_golden_sgd_step(&spec); }
