/* test_vit_golden.c -- vit_encoder and the ViT naming against torchvision's
 * VisionTransformer at a reduced size (image 32, patch 8, 2 layers, 3
 * heads, hidden 48, MLP 96): the state_dict loaded by torchvision's names
 * (conv_proj, class_token, encoder.pos_embedding,
 * encoder.layers.encoder_layer_<i>.{ln_1, self_attention, ln_2, mlp.0,
 * mlp.3}, encoder.ln, heads.head) gives its logits
 * (tests/golden/make_vit_goldens.py writes the references and carries the
 * model's source).
 *
 * The test compiles exactly that source with the real dnnc, loads the
 * golden parameters, compares the logits at batch 1 and 4, then runs one
 * SGD step on the golden batch and compares the loss and the gradients of
 * all 32 parameters (SGD's momentum buffer after the first step is the
 * gradient).  Also on OpenCL (test_vit_golden_opencl).
 * Tolerance: rtol 1e-4, atol 1e-5 (references are float64).
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

static const char *const params[] = {
    "class_token",
    "conv_proj.weight",
    "conv_proj.bias",
    "encoder.pos_embedding",
    "encoder.layers.encoder_layer_0.ln_1.weight",
    "encoder.layers.encoder_layer_0.ln_1.bias",
    "encoder.layers.encoder_layer_0.self_attention.in_proj_weight",
    "encoder.layers.encoder_layer_0.self_attention.in_proj_bias",
    "encoder.layers.encoder_layer_0.self_attention.out_proj.weight",
    "encoder.layers.encoder_layer_0.self_attention.out_proj.bias",
    "encoder.layers.encoder_layer_0.ln_2.weight",
    "encoder.layers.encoder_layer_0.ln_2.bias",
    "encoder.layers.encoder_layer_0.mlp.0.weight",
    "encoder.layers.encoder_layer_0.mlp.0.bias",
    "encoder.layers.encoder_layer_0.mlp.3.weight",
    "encoder.layers.encoder_layer_0.mlp.3.bias",
    "encoder.layers.encoder_layer_1.ln_1.weight",
    "encoder.layers.encoder_layer_1.ln_1.bias",
    "encoder.layers.encoder_layer_1.self_attention.in_proj_weight",
    "encoder.layers.encoder_layer_1.self_attention.in_proj_bias",
    "encoder.layers.encoder_layer_1.self_attention.out_proj.weight",
    "encoder.layers.encoder_layer_1.self_attention.out_proj.bias",
    "encoder.layers.encoder_layer_1.ln_2.weight",
    "encoder.layers.encoder_layer_1.ln_2.bias",
    "encoder.layers.encoder_layer_1.mlp.0.weight",
    "encoder.layers.encoder_layer_1.mlp.0.bias",
    "encoder.layers.encoder_layer_1.mlp.3.weight",
    "encoder.layers.encoder_layer_1.mlp.3.bias",
    "encoder.ln.weight",
    "encoder.ln.bias",
    "heads.head.weight",
    "heads.head.bias",
};
#define NPARAMS 32

static const DnTestGoldenSpec spec = {"vit_goldens", params, NPARAMS, 1, {1, 4}, 4, RTOL, ATOL};

Test(vit_golden, logits_match_torchvision_at_batch_1_and_4) { dn_test_golden_outputs(&spec); }
Test(vit_golden, loss_and_gradients_match_torchvision) { dn_test_golden_sgd_step(&spec); }
