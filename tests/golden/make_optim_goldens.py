#!/usr/bin/env python3
"""make_optim_goldens.py -- golden numbers for the optimizer, schedule and
loss variants (tests/unit/test_optim_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_optim_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic: a rerun writes
identical files.

One tiny model, y = fc(x) with fc a Linear(4, 3), trained for STEPS steps on
one fixed batch with each configuration of CASES (the same text goes into the
.dnn train section the C test compiles).  PyTorch's own optimizers do the
updates, in float64; the learning rate of each step follows dnnc's schedule
(ir/ops.def: lr * warm(t) * sched(t)), set on the param group before the
step, so what is checked is the optimizer arithmetic (momentum, dampening,
Nesterov, weight decay, Adam's bias correction, AdamW's decoupled decay) and
the schedule formulas.  Writes optim_goldens.safetensors:

  x [5,4], label i32 [5], target [5,3], fc.weight, fc.bias (initial)
  <case>.loss [STEPS]       the loss each step computes (before its update)
  <case>.fc.weight/.fc.bias after STEPS steps
and, in its metadata, the case names and each case's loss and optimizer
text, from which the C test writes the .dnn it compiles.
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 4

# name, loss (dnnc text), optimizer (dnnc text), torch optimizer factory,
# schedule parameters {sched, step_size, gamma, total_steps, min_lr, warmup}
CASES = [
    ("sgd_nesterov", "cross_entropy(y, label)",
     "sgd(lr=0.1, momentum=0.9, nesterov=true, weight_decay=0.01)",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), {}),
    ("sgd_dampening_step", "cross_entropy(y, label)",
     "sgd(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.001, schedule=step(step_size=2, gamma=0.5))",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.001),
     {"sched": "step", "step_size": 2, "gamma": 0.5}),
    ("adam_l2_cosine", "cross_entropy(y, label)",
     "adam(lr=0.01, weight_decay=0.01, schedule=cosine(total_steps=4, min_lr=0.001))",
     lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01),
     {"sched": "cosine", "total_steps": 4, "min_lr": 0.001}),
    ("adamw_warmup", "cross_entropy(y, label)",
     "adamw(lr=0.01, weight_decay=0.1, warmup=2)",
     lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1), {"warmup": 2}),
    ("smoothing", "cross_entropy(y, label, smoothing=0.1)",
     "sgd(lr=0.5)", lambda p: torch.optim.SGD(p, lr=0.5), {}),
    ("mse", "mse(y, target)",
     "sgd(lr=0.2, momentum=0.5)", lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.5), {}),
]


def lr_at(base, t, s):
    """dnnc's schedule (ir/ops.def), t = 0-based step."""
    warmup = s.get("warmup", 0)
    warm = (t + 1) / warmup if warmup > 0 and t < warmup else 1.0
    kind = s.get("sched", "const")
    if kind == "step":
        f = s["gamma"] ** (t // s["step_size"])
    elif kind == "cosine":
        T, m = s["total_steps"], s["min_lr"] / base
        f = m + (1 - m) * (1 + math.cos(math.pi * min(t, T) / T)) / 2
    else:
        f = 1.0
    return base * warm * f


def loss_of(text, y, label, target):
    if text.startswith("mse"):
        return F.mse_loss(y, target)
    smoothing = 0.1 if "smoothing" in text else 0.0
    return F.cross_entropy(y, label.long(), label_smoothing=smoothing)


def run_case(case, w0, b0, x, label, target):
    name, loss_text, _, make_opt, sched = case
    w = w0.clone().requires_grad_(True)
    b = b0.clone().requires_grad_(True)
    opt = make_opt([w, b])
    base = opt.param_groups[0]["lr"]
    losses = []
    for t in range(STEPS):
        opt.param_groups[0]["lr"] = lr_at(base, t, sched)
        opt.zero_grad()
        loss = loss_of(loss_text, F.linear(x, w, b), label, target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return torch.tensor(losses), w.detach(), b.detach()


def main():
    torch.manual_seed(11)
    x = torch.randn(5, 4, dtype=torch.float32)
    label = torch.tensor([0, 2, 1, 2, 0], dtype=torch.int32)
    target = torch.randn(5, 3, dtype=torch.float32)
    lin = torch.nn.Linear(4, 3)
    w0, b0 = lin.weight.detach().clone(), lin.bias.detach().clone()
    out = {"x": x, "label": label, "target": target, "fc.weight": w0, "fc.bias": b0}
    for case in CASES:
        losses, w, b = run_case(case, w0.double(), b0.double(), x.double(), label, target.double())
        out[case[0] + ".loss"] = losses.float()
        out[case[0] + ".fc.weight"] = w.float()
        out[case[0] + ".fc.bias"] = b.float()
        print(f"{case[0]}: losses {[round(v, 6) for v in losses.tolist()]}")
    # The C test builds each case's .dnn from these texts: one source of truth.
    meta = {"steps": str(STEPS), "script": "tests/golden/make_optim_goldens.py",
            "cases": ",".join(c[0] for c in CASES)}
    for name, loss_text, opt_text, _, _ in CASES:
        meta[name + ".loss"] = loss_text
        meta[name + ".optimizer"] = opt_text
    write_safetensors(os.path.join(HERE, "optim_goldens.safetensors"), out, meta)


if __name__ == "__main__":
    main()
