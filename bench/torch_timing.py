"""torch_timing.py -- the PyTorch timing the bench/torch_*.py scripts
share: median_ms (warm-up calls, then the median of timed calls) and
time_infer (eval mode, no_grad, printed as "infer batch B median M ms",
what bench/infer_model.sh parses)."""
import statistics
import time

import torch


def median_ms(fn, reps, warmup):
    """Milliseconds: the median of 'reps' calls of fn() after 'warmup' calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def time_infer(model, x, reps, warmup):
    model.eval()
    times = []
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        for _ in range(reps):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    print(f"infer batch {x.shape[0]} median {1e3 * statistics.median(times):.4f} ms")
