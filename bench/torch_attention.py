"""torch_attention.py -- PyTorch's side of bench/attention.sh: attention
alone, q, k, v [B, H, T, d] (plus a parameter of [H, T, d] added to each,
as in the dnnc model, so that the backward reaches all three), forward
and forward+backward with an MSE loss; prints median ms of each and the
peak of the largest tensor the forward keeps (the [B, H, T, T] weights).

Uses F.scaled_dot_product_attention when the torch has it (2.x), else the
composition softmax(q kᵀ / sqrt(d)) v that it computes (Debian's 1.13).

    python3 bench/torch_attention.py T [--batch B] [--heads H] [--dim D] [--reps R] [--threads N]
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("T", type=int)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    shape = (a.batch, a.heads, a.T, a.dim)
    q, k, v, t = (torch.rand(shape) - 0.5 for _ in range(4))
    w = [torch.zeros(shape[1:], requires_grad=True) for _ in range(3)]
    sdpa = getattr(F, "scaled_dot_product_attention", None)

    def attend(q, k, v):
        if sdpa:
            return sdpa(q, k, v)
        s = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(a.dim))
        return torch.matmul(torch.softmax(s, dim=-1), v)

    def timed(fn):
        fn()
        ts = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(ts)

    def forward():
        with torch.no_grad():
            attend(q + w[0], k + w[1], v + w[2])

    def step():
        for p in w:
            p.grad = None
        F.mse_loss(attend(q + w[0], k + w[1], v + w[2]), t).backward()

    kind = "F.scaled_dot_product_attention" if sdpa else "softmax(q kT / sqrt(d)) v"
    print(f"torch {torch.__version__} {kind}")
    print(f"forward {timed(forward):.3f} ms")
    print(f"forward+backward {timed(step):.3f} ms")
    if not sdpa:
        print(f"weights tensor {a.batch * a.heads * a.T * a.T * 4} bytes")


if __name__ == "__main__":
    main()
