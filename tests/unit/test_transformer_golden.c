/* test_transformer_golden.c -- transformer against nn.Transformer
 * (batch_first=True): 2 encoder and 2 decoder layers (gelu, post-norm), a
 * causal target, the source's padding masked in the encoder and in the
 * cross-attention, the weights loaded under nn.Transformer's state_dict
 * names (encoder.layers.<i>.*, encoder.norm.*, decoder.layers.<i>.*,
 * decoder.norm.*) (tests/golden/make_transformer_goldens.py writes the
 * references and carries the model's source).
 *
 * The test compiles exactly that source with the real dnnc, loads the
 * golden parameters, compares the output at batch 1 and 4, then runs one
 * SGD step on the golden batch and compares the loss and the gradients of
 * all 64 parameters (SGD's momentum buffer after the first step is the
 * gradient).  Dropout is 0 (PyTorch's random stream is not dnnc's).  Also
 * on OpenCL (test_transformer_golden_opencl).
 * The same for transformer_encoder against nn.TransformerEncoder (2
 * pre-norm layers and the final norm, causal, the padding masked).
 * Tolerance: rtol 1e-4, atol 1e-5 (references are float64).
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

static const char *const params[] = {
    "tf.encoder.layers.0.self_attn.in_proj_weight",
    "tf.encoder.layers.0.self_attn.in_proj_bias",
    "tf.encoder.layers.0.self_attn.out_proj.weight",
    "tf.encoder.layers.0.self_attn.out_proj.bias",
    "tf.encoder.layers.0.linear1.weight",
    "tf.encoder.layers.0.linear1.bias",
    "tf.encoder.layers.0.linear2.weight",
    "tf.encoder.layers.0.linear2.bias",
    "tf.encoder.layers.0.norm1.weight",
    "tf.encoder.layers.0.norm1.bias",
    "tf.encoder.layers.0.norm2.weight",
    "tf.encoder.layers.0.norm2.bias",
    "tf.encoder.layers.1.self_attn.in_proj_weight",
    "tf.encoder.layers.1.self_attn.in_proj_bias",
    "tf.encoder.layers.1.self_attn.out_proj.weight",
    "tf.encoder.layers.1.self_attn.out_proj.bias",
    "tf.encoder.layers.1.linear1.weight",
    "tf.encoder.layers.1.linear1.bias",
    "tf.encoder.layers.1.linear2.weight",
    "tf.encoder.layers.1.linear2.bias",
    "tf.encoder.layers.1.norm1.weight",
    "tf.encoder.layers.1.norm1.bias",
    "tf.encoder.layers.1.norm2.weight",
    "tf.encoder.layers.1.norm2.bias",
    "tf.encoder.norm.weight",
    "tf.encoder.norm.bias",
    "tf.decoder.layers.0.self_attn.in_proj_weight",
    "tf.decoder.layers.0.self_attn.in_proj_bias",
    "tf.decoder.layers.0.self_attn.out_proj.weight",
    "tf.decoder.layers.0.self_attn.out_proj.bias",
    "tf.decoder.layers.0.multihead_attn.in_proj_weight",
    "tf.decoder.layers.0.multihead_attn.in_proj_bias",
    "tf.decoder.layers.0.multihead_attn.out_proj.weight",
    "tf.decoder.layers.0.multihead_attn.out_proj.bias",
    "tf.decoder.layers.0.linear1.weight",
    "tf.decoder.layers.0.linear1.bias",
    "tf.decoder.layers.0.linear2.weight",
    "tf.decoder.layers.0.linear2.bias",
    "tf.decoder.layers.0.norm1.weight",
    "tf.decoder.layers.0.norm1.bias",
    "tf.decoder.layers.0.norm2.weight",
    "tf.decoder.layers.0.norm2.bias",
    "tf.decoder.layers.0.norm3.weight",
    "tf.decoder.layers.0.norm3.bias",
    "tf.decoder.layers.1.self_attn.in_proj_weight",
    "tf.decoder.layers.1.self_attn.in_proj_bias",
    "tf.decoder.layers.1.self_attn.out_proj.weight",
    "tf.decoder.layers.1.self_attn.out_proj.bias",
    "tf.decoder.layers.1.multihead_attn.in_proj_weight",
    "tf.decoder.layers.1.multihead_attn.in_proj_bias",
    "tf.decoder.layers.1.multihead_attn.out_proj.weight",
    "tf.decoder.layers.1.multihead_attn.out_proj.bias",
    "tf.decoder.layers.1.linear1.weight",
    "tf.decoder.layers.1.linear1.bias",
    "tf.decoder.layers.1.linear2.weight",
    "tf.decoder.layers.1.linear2.bias",
    "tf.decoder.layers.1.norm1.weight",
    "tf.decoder.layers.1.norm1.bias",
    "tf.decoder.layers.1.norm2.weight",
    "tf.decoder.layers.1.norm2.bias",
    "tf.decoder.layers.1.norm3.weight",
    "tf.decoder.layers.1.norm3.bias",
    "tf.decoder.norm.weight",
    "tf.decoder.norm.bias",
};
#define NPARAMS 64

static const DnTestGoldenSpec spec = {"transformer_goldens", params, NPARAMS, 1, {1, 4}, 4, RTOL, ATOL};

Test(transformer_golden, outputs_match_pytorch_at_batch_1_and_4) { dn_test_golden_outputs(&spec); }
Test(transformer_golden, loss_and_gradients_match_pytorch) { dn_test_golden_sgd_step(&spec); }

static const char *const encoder_params[] = {
    "enc.layers.0.self_attn.in_proj_weight",
    "enc.layers.0.self_attn.in_proj_bias",
    "enc.layers.0.self_attn.out_proj.weight",
    "enc.layers.0.self_attn.out_proj.bias",
    "enc.layers.0.linear1.weight",
    "enc.layers.0.linear1.bias",
    "enc.layers.0.linear2.weight",
    "enc.layers.0.linear2.bias",
    "enc.layers.0.norm1.weight",
    "enc.layers.0.norm1.bias",
    "enc.layers.0.norm2.weight",
    "enc.layers.0.norm2.bias",
    "enc.layers.1.self_attn.in_proj_weight",
    "enc.layers.1.self_attn.in_proj_bias",
    "enc.layers.1.self_attn.out_proj.weight",
    "enc.layers.1.self_attn.out_proj.bias",
    "enc.layers.1.linear1.weight",
    "enc.layers.1.linear1.bias",
    "enc.layers.1.linear2.weight",
    "enc.layers.1.linear2.bias",
    "enc.layers.1.norm1.weight",
    "enc.layers.1.norm1.bias",
    "enc.layers.1.norm2.weight",
    "enc.layers.1.norm2.bias",
    "enc.norm.weight",
    "enc.norm.bias",
};

static const DnTestGoldenSpec encoder_spec = {
    "transformer_encoder_goldens", encoder_params, 26, 1, {1, 4}, 4, RTOL, ATOL};

Test(transformer_golden, encoder_outputs_match_pytorch_at_batch_1_and_4) { dn_test_golden_outputs(&encoder_spec); }
Test(transformer_golden, encoder_loss_and_gradients_match_pytorch) { dn_test_golden_sgd_step(&encoder_spec); }
