#!/bin/sh
# kv_decode.sh -- KV-cache decoding at batch 1: tokens per second for
# TOKENS greedily generated tokens, dnnc (bench/kv_bench.c on the step
# library of bench/kv_step.dnn, its cache in the session) against PyTorch
# with its own cache (bench/torch_kv_decode.py), same threads, alternating
# runs; prints each run and the medians' ratio.
#
#   bench/kv_decode.sh [-t THREADS] [-n TOKENS] [-r ROUNDS] [-b BUILD_DIR]
#
# Defaults: 1 thread, 512 tokens, 3 rounds (each the median of 5 sequences),
# ./build.  PYTHON picks the interpreter with torch (default /usr/bin/python3).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
threads=1 tokens=512 rounds=3 build="$here/../build"
while getopts t:n:r:b: opt; do
    case $opt in
    t) threads=$OPTARG ;; n) tokens=$OPTARG ;; r) rounds=$OPTARG ;; b) build=$OPTARG ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
    esac
done
python=${PYTHON:-/usr/bin/python3}
[ -x "$build/dnnc" ] || { echo "kv_decode.sh: $build/dnnc missing: build the project first (-b BUILD_DIR)" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null || { echo "kv_decode.sh: $python has no torch (set PYTHON)" >&2; exit 1; }
[ "$tokens" -le 512 ] || { echo "kv_decode.sh: at most 512 tokens (the step's cache)" >&2; exit 2; }
work=$(mktemp -d /tmp/dnnc-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$build/dnnc" "$here/kv_step.dnn" -o "$work/step.so"
${CC:-cc} -std=gnu11 -O2 -I"$here/../runtime/include" "$here/kv_bench.c" -o "$work/kv_bench" -ldl
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads DNRT_THREADS=$threads

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
rate() { sed -n 's/.*(\([0-9]*\) tokens\/s)/\1/p'; }

echo "KV-cache decoding, batch 1, $tokens tokens, $threads thread(s), $rounds rounds"
: > "$work/d" && : > "$work/t"
r=1
while [ "$r" -le "$rounds" ]; do
    d=$("$work/kv_bench" "$work/step.so" "$threads" "$tokens" 5 | rate)
    t=$("$python" "$here/torch_kv_decode.py" --threads "$threads" --tokens "$tokens" | rate)
    echo "round $r: dnnc $d tokens/s, pytorch $t tokens/s"
    echo "$d" >> "$work/d" && echo "$t" >> "$work/t"
    r=$((r + 1))
done
d=$(median < "$work/d")
t=$(median < "$work/t")
echo "median: dnnc $d tokens/s, pytorch $t tokens/s; dnnc/pytorch = $(awk -v a="$d" -v b="$t" 'BEGIN { printf "%.2f", a / b }')x"
