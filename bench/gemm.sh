#!/bin/sh
# gemm.sh -- square matmul y[n, n] = x[n, n] · w[n, n] in GFLOP/s at each
# size of -s: dnnc (a one-op model compiled --no-train, timed with
# bench/infer_bench.c at batch n, so x's rows are the batch) against NumPy's
# BLAS (bench/blas_gemm.py: OpenBLAS in PyPI's numpy), same threads, one
# after the other per size; prints both, dnnc / BLAS and dnnc's share of
# the FMA peak (bench/fma_peak.c: one core's, times the threads).
#
#   bench/gemm.sh [-s "256 512 1024 2048 4096"] [-t THREADS] [-n REPS] [-b BUILD_DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sizes="256 512 1024 2048 4096" threads=1 reps=5 build="$here/../build"
while getopts s:t:n:b: opt; do
    case $opt in
    s) sizes=$OPTARG ;; t) threads=$OPTARG ;; n) reps=$OPTARG ;; b) build=$OPTARG ;;
    *) sed -n '2,8p' "$0"; exit 2 ;;
    esac
done
python=${PYTHON:-/usr/bin/python3}
[ -x "$build/dnnc" ] || { echo "gemm.sh: $build/dnnc missing: build the project first (-b BUILD_DIR)" >&2; exit 1; }
"$python" -c 'import numpy' 2>/dev/null || { echo "gemm.sh: $python has no numpy (set PYTHON)" >&2; exit 1; }
work=$(mktemp -d /tmp/dnnc-gemm-XXXXXX)
trap 'rm -rf "$work"' EXIT
${CC:-cc} -std=gnu11 -O2 -I"$here/../runtime/include" "$here/infer_bench.c" -o "$work/bench" -ldl
${CC:-cc} -std=gnu11 -O2 "$here/fma_peak.c" -o "$work/fma_peak"
"$work/fma_peak" | tee "$work/peak"
peak=$(awk '{ if ($2 > p) p = $2 } END { print p * '"$threads"' }' "$work/peak")
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads DNRT_THREADS=$threads
echo "square matmul, $threads thread(s), median of $reps calls; $(uname -m)," \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for n in $sizes; do
    cat >"$work/mm.dnn" <<DNN
model mm(x: f32[N, $n]) -> (y: f32[N, $n]) {
  param w: f32[$n, $n] = normal(std=0.01)
  y = matmul(x, w)
}
DNN
    "$build/dnnc" "$work/mm.dnn" --no-train -o "$work/mm.so"
    ms=$("$work/bench" "$work/mm.so" "$n" "$threads" "$reps" 1 | awk '{ print $5 }')
    blas=$("$python" "$here/blas_gemm.py" "$n" "$reps")
    echo "$n $ms $blas $peak" | awk '{ d = 2 * $1 ^ 3 / $2 / 1e6; b = 2 * $1 ^ 3 / $3 / 1e6
        printf "n %5d: dnnc %8.2f ms %6.1f GFLOP/s (%2.0f%% of peak), BLAS %8.2f ms %6.1f GFLOP/s, dnnc/BLAS %.2f\n",
            $1, $2, d, 100 * d / $4, $3, b, d / b }'
done
