#!/usr/bin/env python3
"""make_vit_goldens.py -- golden numbers for vit_encoder and the ViT naming
against torchvision's VisionTransformer (tests/unit/test_vit_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_vit_goldens.py
Needs PyTorch and torchvision (Debian's python3-torch 1.13 and
python3-torchvision 0.14).  Deterministic: a rerun writes identical files.

One model, SOURCE below (the C test compiles exactly this text, which travels
in the file's metadata): torchvision.models.VisionTransformer at a reduced
size (image 32, patch 8, 2 layers, 3 heads, hidden 48, MLP 96, 10 classes),
its state_dict loaded by name (conv_proj, class_token, encoder.pos_embedding,
encoder.layers.encoder_layer_<i>.{ln_1, self_attention, ln_2, mlp.0, mlp.3},
encoder.ln, heads.head).  Dropout is 0 (torchvision's default), the module is
in training mode (nn.MultiheadAttention's inference fast path is another
kernel), the class token, the head and the norms made non-trivial (torchvision
initialises them to zeros and ones), and the loss is mse(logits, t).
References are float64 (a double copy of the module) from the float32 values,
stored as float32.  Writes vit_goldens.safetensors:

  <param>                    the parameters, under torchvision's names
  b<n>.image, b<n>.logits    at batch n = 1 and 4
  train.image, train.t_logits, train.loss [1], grad.<param>   one SGD step at batch 4

It also writes the state_dict names and types of torchvision's vit_b_16()
(vit_b_16_params.txt) and of the same model at ViT-Tiny's size
(vit_tiny_params.txt: patch 16, 12 layers, 3 heads, hidden 192, MLP 768),
which examples/vit_b_16.dnn and examples/vit_tiny.dnn must declare
(tests/unit/test_examples.c).
"""
import os
import sys

import torch
from torchvision.models import VisionTransformer, vit_b_16

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_goldens import write_module_goldens  # noqa: E402
from make_goldens import write_param_list  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

SOURCE = (
    "model vit(image: f32[N, 3, 32, 32]) -> (logits: f32[N, 10]) {\n"
    "  param class_token: f32[1, 1, 48] = zeros\n"
    "  x = image |> conv_proj: conv2d(48, 8, stride=8) |> flatten(2) |> transpose(1, 2)\n"
    "  x = concat([expand(class_token, -1, 1, 48), x], axis=1)\n"
    "  x = x |> encoder: vit_encoder(2, 3, 48, 96)\n"
    "  logits = x[:, 0] |> heads.head: dense(10)\n"
    "}\n"
    "train vit {\n  t_logits: f32[N, 10]\n  loss = mse(logits, t_logits)\n  optimizer = sgd(lr=0.1, momentum=0.9)\n}\n")


def forward(m, x):
    return {"logits": m[""](x["image"])}


def inputs(n):
    return {"image": torch.randn(n, 3, 32, 32)}


def main():
    torch.manual_seed(31)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=3, hidden_dim=48, mlp_dim=96,
                            num_classes=10)
    with torch.no_grad():
        vit.class_token.normal_(0, 0.5)
        vit.heads.head.weight.normal_(0, 0.2)
        vit.heads.head.bias.normal_(0, 0.2)
        for name, p in vit.named_parameters():
            if ".ln" in name:
                p.normal_(1 if name.endswith("weight") else 0, 0.3)
            if "mlp" in name and name.endswith("bias"):
                p.normal_(0, 0.1)
    vit.train()
    meta = {"script": "tests/golden/make_vit_goldens.py", "source": SOURCE}
    write_module_goldens(os.path.join(HERE, "vit_goldens.safetensors"), meta, {"": vit}, inputs, forward,
                         {"logits": [10]})
    me = "make_vit_goldens.py"
    write_param_list(os.path.join(HERE, "vit_b_16_params.txt"), vit_b_16(), "torchvision vit_b_16()", me)
    tiny = VisionTransformer(image_size=224, patch_size=16, num_layers=12, num_heads=3, hidden_dim=192, mlp_dim=768)
    write_param_list(os.path.join(HERE, "vit_tiny_params.txt"), tiny,
                     "torchvision VisionTransformer(224, 16, 12, 3, 192, 768)", me)


if __name__ == "__main__":
    main()
