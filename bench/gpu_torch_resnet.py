#!/usr/bin/env python3
"""gpu_torch_resnet.py -- the PyTorch side of the GPU benchmark that
tests/gpu/run.sh runs on a GPU machine (tests/gpu/prepare.sh BENCH=1 copies
it there with make_goldens.py): ResNet-18 as examples/resnet.dnn, on the
GPU with cuDNN (benchmark mode), fp32, torch.cuda.synchronize() around
every call; prints the lines

    torch: infer batch 1 median M ms
    torch: infer batch 64 median M ms
    torch: train_step batch 64 median M ms

and the GPU's name.  Exit status 3 when PyTorch has no CUDA device.
"""
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from make_goldens import resnet18  # noqa: E402


def median_ms(fn, reps, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main():
    if not torch.cuda.is_available():
        print("torch: no CUDA device", file=sys.stderr)
        return 3
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    torch.manual_seed(1)
    model = resnet18().to(dev)
    model.eval()
    with torch.no_grad():
        for b, reps in ((1, 20), (64, 10)):
            x = torch.randn(b, 3, 224, 224, device=dev)
            print(f"torch: infer batch {b} median {median_ms(lambda: model(x), reps):.3f} ms")
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(64, 3, 224, 224, device=dev)
    y = torch.randint(0, 1000, (64,), device=dev)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    print(f"torch: train_step batch 64 median {median_ms(step, 10):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
