#!/usr/bin/env python3
"""make_googlenet_goldens.py -- torchvision's GoogLeNet against
examples/googlenet.dnn (tests/unit/test_googlenet.c), without committing
its 26 MB of weights.

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_googlenet_goldens.py
Needs PyTorch and torchvision (Debian's 1.13 and 0.14).  Deterministic.

The weights come from a formula the C test computes too, exactly.  Entry k
(0-based, in state_dict order: the line order of googlenet_params.txt) with
elements i = 0, 1, ... (row-major) gets
    h = (i * 2654435761 + k * 40503) mod 2^32
    h = h xor (h >> 16);  h = (h * 0x45d9f3b) mod 2^32;  h = h xor (h >> 16)
    u = h / 2^32 - 0.5   (in [-0.5, 0.5))
    value = (float32)(u * scale + shift)         (IEEE double, then rounded to float32)
with, by the name's last component:
    conv weight [O, I, kh, kw]   scale = sqrt(24 / (I kh kw)), shift 0   (std sqrt(2 / fan_in), He)
    fc.weight [O, I]             scale = sqrt(12 / I), shift 0
    fc.bias                      scale = 0.2, shift 0
    bn weight                    scale = 0.5, shift 1       (in [0.75, 1.25))
    bn bias, running_mean        scale = 0.2, shift 0
    running_var                  scale = 0.5, shift 1       (positive)
    num_batches_tracked          0 (int64, unused in eval)
Every operation is a correctly rounded IEEE one (a product, a division, a
square root, a sum), so C and Python get the same bits.  (The mixing step
matters: the bare multiplicative hash is a low-discrepancy sequence, whose
sums over a convolution's window cancel, and the activations would fade to
0.02 by inception5b; mixed, they stay between 1 and 4.)

The model is torchvision.models.googlenet(aux_logits=False,
transform_input=False, init_weights=True) in eval(), on a seeded input of
2 x 3 x 48 x 48.  Every stage is valid there and ceil_mode changes all four
strided max pools (48 -> conv1 24 -> 12 -> 6 -> 3 -> 2; with floor they would
give 11, 5, 2, 1), inception5 runs on 2 x 2, the adaptive average pool
averages 2 x 2.  References are float64 runs (the weights and the input
rounded to float32 first), stored as float32; the script prints PyTorch's
float32-vs-float64 difference.  Writes:
  googlenet_params.txt          the state_dict's names and types (as `dnnc --emit=ir` spells them)
  googlenet_golden.safetensors  image [2, 3, 48, 48] and logits [2, 1000]
"""
import math
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import IR_DTYPES, write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 48
BATCH = 2


def scale_shift(name, shape):
    leaf = name.rsplit(".", 1)[-1]
    if name == "fc.weight":
        return math.sqrt(12.0 / shape[1]), 0.0
    if name == "fc.bias":
        return 0.2, 0.0
    if leaf == "weight" and len(shape) == 4:
        return math.sqrt(24.0 / (shape[1] * shape[2] * shape[3])), 0.0
    if leaf in ("weight", "running_var"):
        return 0.5, 1.0
    if leaf in ("bias", "running_mean"):
        return 0.2, 0.0
    raise ValueError(name)


def formula(k, name, shape):
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.int64)
    h = (i * 2654435761 + k * 40503) % (1 << 32)
    h = h ^ (h >> 16)
    h = (h * 0x45D9F3B) % (1 << 32)
    h = h ^ (h >> 16)
    u = h.double() / 4294967296.0 - 0.5
    scale, shift = scale_shift(name, shape)
    return (u * scale + shift).float().reshape(shape)


def main():
    torch.manual_seed(11)
    model = torchvision.models.googlenet(weights=None, aux_logits=False, transform_input=False, init_weights=True)
    model.eval()
    sd = model.state_dict()
    lines = [f"{n} {IR_DTYPES[t.dtype]}[{', '.join(str(d) for d in t.shape)}]\n" for n, t in sd.items()]
    path = os.path.join(HERE, "googlenet_params.txt")
    with open(path, "w") as f:
        f.write("# torchvision googlenet(aux_logits=False) state_dict: name and type; "
                "written by make_googlenet_goldens.py\n")
        f.writelines(lines)
    print(f"wrote {os.path.relpath(path)} ({len(lines)} entries)")
    new = {}
    for k, (name, t) in enumerate(sd.items()):
        new[name] = torch.zeros_like(t) if t.dtype == torch.int64 else formula(k, name, list(t.shape))
    model.load_state_dict(new)
    image = torch.randn(BATCH, 3, SIZE, SIZE)
    with torch.no_grad():
        y32 = model(image)
        y64 = model.double()(image.double())
    err = ((y32.double() - y64).abs().max() / y64.abs().max()).item()
    print(f"logits: max|y| {y64.abs().max().item():.3f}, std {y64.std().item():.3f}, fp32 vs fp64 {err:.2e}")
    meta = {"script": "tests/golden/make_googlenet_goldens.py", "size": str(SIZE)}
    write_safetensors(os.path.join(HERE, "googlenet_golden.safetensors"),
                      {"image": image, "logits": y64.float()}, meta)


if __name__ == "__main__":
    main()
