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

It also writes the ResNet goldens of tests/unit/test_resnet.c (see
make_resnet_tiny and tests/golden/README.md): resnet18_params.txt, the
state_dict names and types of torchvision's resnet18 (mirrored here, no
torchvision needed), and resnet_tiny_{weights,infer,train}.safetensors.

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


# ---- ResNet ------------------------------------------------------------
# examples/resnet.dnn (ResNet-18) and tests/golden/resnet_tiny.dnn.  torchvision
# is not a dependency: BasicBlock and ResNet below mirror torchvision's
# attribute names (conv1, bn1, layerK.J.conv1/bn1/conv2/bn2,
# layerK.0.downsample.0/1, fc) and registration order, so their state_dict
# keys and shapes are torchvision.models.resnet18()'s.

class BasicBlock(nn.Module):
    def __init__(self, cin, c, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = None
        if stride != 1 or cin != c:
            self.downsample = nn.Sequential(nn.Conv2d(cin, c, 1, stride=stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.downsample is not None:
            x = self.downsample(x)
        return self.relu(x + y)


class ResNet(nn.Module):
    """torchvision's ResNet with BasicBlocks: a 7x7/2 convolution, batchnorm,
    relu and 3x3/2 max pooling, then one stage (layerK) per width, global
    average pooling and a dense layer."""

    def __init__(self, widths, blocks, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = widths[0]
        for k, (c, nb) in enumerate(zip(widths, blocks)):
            stride = 1 if k == 0 else 2
            layer = nn.Sequential(*[BasicBlock(cin if j == 0 else c, c, stride if j == 0 else 1) for j in range(nb)])
            setattr(self, f"layer{k + 1}", layer)
            cin = c
        self.nstages = len(widths)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for k in range(self.nstages):
            x = getattr(self, f"layer{k + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18():
    return ResNet([64, 128, 256, 512], [2, 2, 2, 2], 1000)


def resnet_tiny():
    """tests/golden/resnet_tiny.dnn: ResNet-18's stem and blocks, two stages
    of two blocks, 8 and 16 channels, 3x16x16 inputs (16 -> 8 after conv1,
    4 after the max pool, 2 after layer2's stride), 10 classes."""
    return ResNet([8, 16], [2, 2], 10)


IR_DTYPES = {torch.float32: "f32", torch.int64: "i64"}


def write_param_list(path, model, what="torchvision resnet18()", script="make_goldens.py"):
    """One line per state_dict entry, "name type" with the type spelled as
    `dnnc --emit=ir` spells it (f32[64, 3, 7, 7], i64[])."""
    lines = [f"{n} {IR_DTYPES[t.dtype]}[{', '.join(str(d) for d in t.shape)}]\n" for n, t in model.state_dict().items()]
    with open(path, "w") as f:
        f.write(f"# {what} state_dict: name and type; written by {script}\n")
        f.writelines(lines)
    print(f"wrote {os.path.relpath(path)} ({len(lines)} entries)")


RESNET_BATCH = 5


def make_resnet_tiny(seed):
    """resnet_tiny_{weights,infer,train}.safetensors; see tests/golden/README.md."""
    name = "resnet_tiny"
    torch.manual_seed(seed)
    model = resnet_tiny()
    # Non-trivial batchnorm affine parameters and running statistics, so that
    # eval mode (running stats) and train mode (batch stats) differ and a
    # swapped or ignored buffer shows.  num_batches_tracked = 3 (becomes 4).
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c) + 0.5)
                m.bias.copy_(0.2 * torch.randn(c))
                m.running_mean.copy_(0.3 * torch.randn(c))
                m.running_var.copy_(torch.rand(c) * 1.5 + 0.5)
                m.num_batches_tracked.fill_(3)
    weights = {k: (v.detach().clone() if v.dtype == torch.int64 else f32(v)) for k, v in model.state_dict().items()}
    meta = {"generator": "tests/golden/make_goldens.py", "torch": torch.__version__, "seed": str(seed)}
    write_safetensors(os.path.join(HERE, f"{name}_weights.safetensors"), weights, meta)

    def twin_rn(dtype):
        m = resnet_tiny().to(dtype)
        m.load_state_dict({k: (v if v.dtype == torch.int64 else v.to(dtype)) for k, v in weights.items()})
        return m

    worst = {}
    infer = {}
    for b in (1, RESNET_BATCH):
        image = torch.randn(b, 3, 16, 16)
        with torch.no_grad():
            ref = twin_rn(torch.float64).eval()(image.double())
            got = twin_rn(torch.float32).eval()(image)
        worst[f"logits.b{b}"] = scaled_err(got, ref)
        infer[f"image.b{b}"] = image
        infer[f"logits.b{b}"] = f32(ref)
    write_safetensors(os.path.join(HERE, f"{name}_infer.safetensors"), infer, meta)

    # One SGD step (lr 0.1, momentum 0.9) in train mode: batchnorm uses the
    # batch statistics and updates the running ones (momentum 0.1, unbiased
    # variance), num_batches_tracked += 1.
    image = torch.randn(RESNET_BATCH, 3, 16, 16)
    label = torch.randint(0, 10, (RESNET_BATCH,), dtype=torch.int32)
    runs = {}
    for dtype in (torch.float64, torch.float32):
        m = twin_rn(dtype).train()
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        opt.zero_grad()
        loss = F.cross_entropy(m(image.to(dtype)), label.long())
        loss.backward()
        grad = {n: p.grad.detach().clone() for n, p in m.named_parameters()}
        opt.step()
        for n, p in m.named_parameters():
            assert torch.equal(opt.state[p]["momentum_buffer"], grad[n])
        runs[dtype] = (loss.detach().reshape(1), grad, {k: v.detach().clone() for k, v in m.state_dict().items()})
    (loss, grad, after), (loss32, grad32, after32) = runs[torch.float64], runs[torch.float32]
    train = {"image": image, "label": label, "loss": f32(loss)}
    worst["loss"] = scaled_err(loss32, loss)
    for n, g in grad.items():
        train[f"grad.{n}"] = f32(g)
        worst[f"grad.{n}"] = scaled_err(grad32[n], g)
    for n, v in after.items():
        if v.dtype == torch.int64:
            train[f"step1.{n}"] = v.clone()
        else:
            train[f"step1.{n}"] = f32(v)
            worst[f"step1.{n}"] = scaled_err(after32[n], v)
    write_safetensors(os.path.join(HERE, f"{name}_train.safetensors"), train, meta)

    key = max(worst, key=worst.get)
    print(f"{name}: largest fp32-vs-fp64 scaled difference {worst[key]:.2e} ({key})")
    for k in sorted(worst, key=worst.get, reverse=True)[:8]:
        print(f"    {k}: {worst[k]:.2e}")


def main():
    torch.set_num_threads(1)
    make_model("lenet", LeNet, 0)
    make_model("mlp", MLP, 1)
    write_param_list(os.path.join(HERE, "resnet18_params.txt"), resnet18())
    make_resnet_tiny(2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
