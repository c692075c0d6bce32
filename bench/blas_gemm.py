#!/usr/bin/env python3
"""blas_gemm.py N REPS -- the BLAS side of bench/gemm.sh: NumPy's float32
N x N matmul (its BLAS, on the threads OPENBLAS_NUM_THREADS allows);
prints the median of REPS calls in ms, after one warm-up call."""
import statistics
import sys
import time

import numpy as np

n, reps = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(1)
a = rng.random((n, n), dtype=np.float32)
b = rng.random((n, n), dtype=np.float32)
a @ b
times = []
for _ in range(reps):
    t0 = time.perf_counter()
    a @ b
    times.append(time.perf_counter() - t0)
print(f"{1e3 * statistics.median(times):.4f}")
