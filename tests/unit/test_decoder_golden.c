/* test_decoder_golden.c -- transformer_decoder_layer against
 * nn.TransformerDecoderLayer(batch_first=True): a post-norm relu layer with
 * a causal tgt_mask and a memory_key_padding_mask followed by a pre-norm
 * (norm_first) gelu layer, the weights loaded under PyTorch's state_dict
 * names (self_attn.*, multihead_attn.*, linear1/2.*, norm1/2/3.*)
 * (tests/golden/make_decoder_goldens.py writes the references and carries
 * the model's source).
 *
 * The test compiles exactly that source with the real dnnc, loads the
 * golden parameters, compares the output at batch 1 and 4, then runs one
 * SGD step on the golden batch and compares the loss and the gradients of
 * all 36 parameters (SGD's momentum buffer after the first step is the
 * gradient).  Dropout is 0 (PyTorch's random stream is not dnnc's).  Also
 * on OpenCL (test_decoder_golden_opencl).
 * Tolerance: rtol 1e-4, atol 1e-5 (references are float64).
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

static const char *const params[] = {
    "dec1.self_attn.in_proj_weight",
    "dec1.self_attn.in_proj_bias",
    "dec1.self_attn.out_proj.weight",
    "dec1.self_attn.out_proj.bias",
    "dec1.multihead_attn.in_proj_weight",
    "dec1.multihead_attn.in_proj_bias",
    "dec1.multihead_attn.out_proj.weight",
    "dec1.multihead_attn.out_proj.bias",
    "dec1.linear1.weight",
    "dec1.linear1.bias",
    "dec1.linear2.weight",
    "dec1.linear2.bias",
    "dec1.norm1.weight",
    "dec1.norm1.bias",
    "dec1.norm2.weight",
    "dec1.norm2.bias",
    "dec1.norm3.weight",
    "dec1.norm3.bias",
    "dec2.self_attn.in_proj_weight",
    "dec2.self_attn.in_proj_bias",
    "dec2.self_attn.out_proj.weight",
    "dec2.self_attn.out_proj.bias",
    "dec2.multihead_attn.in_proj_weight",
    "dec2.multihead_attn.in_proj_bias",
    "dec2.multihead_attn.out_proj.weight",
    "dec2.multihead_attn.out_proj.bias",
    "dec2.linear1.weight",
    "dec2.linear1.bias",
    "dec2.linear2.weight",
    "dec2.linear2.bias",
    "dec2.norm1.weight",
    "dec2.norm1.bias",
    "dec2.norm2.weight",
    "dec2.norm2.bias",
    "dec2.norm3.weight",
    "dec2.norm3.bias",
};
#define NPARAMS 36

static const DnTestGoldenSpec spec = {"decoder_goldens", params, NPARAMS, 1, {1, 4}, 4, RTOL, ATOL};

Test(decoder_golden, outputs_match_pytorch_at_batch_1_and_4) { dn_test_golden_outputs(&spec); }
Test(decoder_golden, loss_and_gradients_match_pytorch) { dn_test_golden_sgd_step(&spec); }
