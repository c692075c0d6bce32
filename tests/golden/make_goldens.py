#!/usr/bin/env python3
"""make_goldens.py -- writes the golden numbers of tests/unit/test_golden.c.

Run by hand (never by the tests), from anywhere:
    python3 tests/golden/make_goldens.py
Needs PyTorch (Debian's python3-torch 1.13 is enough) and nothing else: the
safetensors files are written with struct + json.

For each model (LeNet-5 and a 3-layer MLP, the twins of tests/golden/*.dnn,
with module attribute names equal to dnnc's labels so state_dict keys equal
dnnc's parameter names) it writes:

  <m>_weights.safetensors  the initial state_dict (fixed seed); exactly the
                           model's weights, nothing else
  <m>_infer.safetensors    image.b1 [1,1,28,28], logits.b1 [1,10],
                           image.b7 [7,1,28,28], logits.b7 [7,10]
  <m>_train.safetensors    image [7,1,28,28], label i32 [7], loss [1] (first
                           step, from the initial weights) and grad.<param>:
                           the gradient of the mean cross-entropy at the
                           initial weights.  For SGD with momentum (dampening
                           0, no weight decay) the momentum buffer after one
                           step equals this gradient, so the SGD test compares
                           optim.<param>.momentum_buffer with grad.<param>.
  <m>_sgd.safetensors      SGD lr 0.1 momentum 0.9, three steps on the same
                           batch: loss [3] (the loss each step computes, before
                           its update), step1.<param>, step3.<param>
  <m>_adam.safetensors     Adam lr 1e-3 (betas 0.9, 0.999, eps 1e-8): loss [3],
                           step1.<param>, step3.<param>.  The moments after
                           step 1 are exactly exp_avg = 0.1 * grad and
                           exp_avg_sq = 0.001 * grad^2 (PyTorch starts both at
                           zero), so they are not stored twice: the test derives
                           them from grad.<param>.  This keeps the files small.

References are computed in float64 from the float32-rounded weights and
inputs, then stored as float32, so they are as exact as a float32 file can be.
The script also runs everything in float32 and prints the largest
max-abs-scaled difference between the float32 and float64 runs: that is the
size of error an fp32 implementation is expected to show, and the tolerances
in test_golden.c are chosen well above it.
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 7


class LeNet(nn.Module):
    """examples/lenet.dnn and tests/golden/lenet_*.dnn."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class MLP(nn.Module):
    """tests/golden/mlp_*.dnn: examples/mlp.dnn narrowed (64/32 hidden) and without dropout."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 64)
        self.fc2 = nn.Linear(64, 32)
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


DTYPES = {torch.float32: "F32", torch.int32: "I32", torch.int64: "I64"}


def write_safetensors(path, tensors, meta):
    """Writes an ordered dict name -> tensor as safetensors (8-byte LE header
    length, JSON header padded with spaces to 8 bytes, raw LE data)."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


def scaled_err(a, b):
    """max|a - b| / max|b|: the quantity the C tests bound."""
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def f32(t):
    return t.detach().float().clone()


def run_training(model, opt_name, image, label, steps):
    """Trains 'model' in place for 'steps' steps on one batch; returns the
    losses, the first gradient, the params after each step and the optimizer
    state after step 1 (all detached copies)."""
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    names = [n for n, _ in model.named_parameters()]
    losses, grad, params, state1 = [], None, [], {}
    for step in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(image), label.long())
        loss.backward()
        if step == 0:
            grad = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
        opt.step()
        losses.append(loss.detach().clone())
        params.append({n: p.detach().clone() for n, p in model.named_parameters()})
        if step == 0:
            for n, p in zip(names, model.parameters()):
                st = opt.state[p]
                if opt_name == "adam":
                    state1[f"optim.{n}.exp_avg"] = st["exp_avg"].clone()
                    state1[f"optim.{n}.exp_avg_sq"] = st["exp_avg_sq"].clone()
                else:
                    state1[f"optim.{n}.momentum_buffer"] = st["momentum_buffer"].clone()
    return torch.stack(losses), grad, params, state1


def twin(cls, weights, dtype):
    m = cls().to(dtype)
    m.load_state_dict({k: v.to(dtype) for k, v in weights.items()})
    return m


def make_model(name, cls, seed):
    torch.manual_seed(seed)
    weights = {k: f32(v) for k, v in cls().state_dict().items()}
    meta = {"generator": "tests/golden/make_goldens.py", "torch": torch.__version__, "seed": str(seed)}
    write_safetensors(os.path.join(HERE, f"{name}_weights.safetensors"), weights, meta)
    worst = {}

    infer = {}
    for b in (1, BATCH):
        image = torch.randn(b, 1, 28, 28)
        ref = twin(cls, weights, torch.float64)(image.double())
        got = twin(cls, weights, torch.float32)(image)
        worst[f"logits.b{b}"] = scaled_err(got, ref)
        infer[f"image.b{b}"] = image
        infer[f"logits.b{b}"] = f32(ref)
    write_safetensors(os.path.join(HERE, f"{name}_infer.safetensors"), infer, meta)

    image = torch.randn(BATCH, 1, 28, 28)
    label = torch.randint(0, 10, (BATCH,), dtype=torch.int32)
    train = {"image": image, "label": label}
    for opt_name in ("sgd", "adam"):
        runs = {}
        for dtype in (torch.float64, torch.float32):
            runs[dtype] = run_training(twin(cls, weights, dtype), opt_name, image.to(dtype), label, 3)
        (loss, grad, params, state1), (loss32, grad32, params32, state32) = runs[torch.float64], runs[torch.float32]
        if opt_name == "sgd":
            train["loss"] = f32(loss[:1])
            for n, g in grad.items():
                train[f"grad.{n}"] = f32(g)
                worst[f"grad.{n}"] = scaled_err(grad32[n], g)
        out = {"loss": f32(loss)}
        worst[f"{opt_name}.loss"] = scaled_err(loss32, loss)
        for k in (1, 3):
            for n, p in params[k - 1].items():
                out[f"step{k}.{n}"] = f32(p)
                worst[f"{opt_name}.step{k}.{n}"] = scaled_err(params32[k - 1][n], p)
        for n, s in state1.items():
            worst[f"{opt_name}.step1.{n}"] = scaled_err(state32[n], s)
        if opt_name == "adam":
            # Adam's first step is lr * g / (|g| + eps): near g = 0 it turns a
            # gradient rounding error d into an update error up to lr * d / eps.
            upd = max((params32[k][n].double() - params[k][n]).abs().max().item() for k in (0, 2) for n in params[k])
            print(f"{name}: adam: largest fp32-vs-fp64 parameter difference {upd:.2e} = {upd / 1e-3:.3f} * lr")
        write_safetensors(os.path.join(HERE, f"{name}_{opt_name}.safetensors"), out, meta)
    write_safetensors(os.path.join(HERE, f"{name}_train.safetensors"), train, meta)

    key = max(worst, key=worst.get)
    print(f"{name}: largest fp32-vs-fp64 scaled difference {worst[key]:.2e} ({key})")
    for k in sorted(worst):
        if "step3" in k or "loss" in k or "logits" in k:
            print(f"    {k}: {worst[k]:.2e}")


def main():
    torch.set_num_threads(1)
    make_model("lenet", LeNet, 0)
    make_model("mlp", MLP, 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
