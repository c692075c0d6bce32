#!/bin/sh
# infer_resnet.sh -- ResNet-18 inference latency (3x224x224) at batch 1 and 8: dnnc
# (bench/infer_bench.c driving the library of examples/resnet.dnn compiled
# with --no-train) against PyTorch (bench/torch_resnet.py infer: eval mode,
# no_grad), same thread count, alternating runs; prints medians and ratios.
#
#   bench/infer_resnet.sh [-t THREADS] [-r ROUNDS] [-n REPS] [-B "BATCHES"] [-b BUILD_DIR]
#
# Defaults: 1 thread, 3 rounds of 10 timed calls each (after 2 warm-up calls),
# batches "1 8" (-B "1"), build dir ./build.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
threads=1 rounds=3 reps=10 batches="1 8" build="$here/../build"
while getopts t:r:n:b:B: opt; do
    case $opt in
    t) threads=$OPTARG ;; r) rounds=$OPTARG ;; n) reps=$OPTARG ;; b) build=$OPTARG ;; B) batches=$OPTARG ;;
    *) sed -n '2,10p' "$0"; exit 2 ;;
    esac
done
python=${PYTHON:-/usr/bin/python3}
[ -x "$build/dnnc" ] || { echo "infer_resnet.sh: $build/dnnc missing: build the project first (-b BUILD_DIR)" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null || { echo "infer_resnet.sh: $python has no torch (set PYTHON)" >&2; exit 1; }
work=$(mktemp -d /tmp/dnnc-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$build/dnnc" "$here/../examples/resnet.dnn" --no-train -o "$work/resnet.so"
${CC:-cc} -std=gnu11 -O2 -I"$here/../runtime/include" "$here/infer_bench.c" -o "$work/infer_bench" -ldl
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads DNRT_THREADS=$threads

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "ResNet-18 inference, $threads thread(s), median of $rounds rounds x $reps calls"
for batch in $batches; do
    : > "$work/d" && : > "$work/t"
    r=1
    while [ "$r" -le "$rounds" ]; do
        "$work/infer_bench" "$work/resnet.so" "$batch" "$threads" "$reps" 2 | sed 's/.*median \([0-9.]*\) ms/\1/' >> "$work/d"
        "$python" "$here/torch_resnet.py" infer --threads "$threads" --batch "$batch" --reps "$reps" --warmup 2 \
            | sed 's/.*median \([0-9.]*\) ms/\1/' >> "$work/t"
        r=$((r + 1))
    done
    d=$(median < "$work/d")
    t=$(median < "$work/t")
    echo "batch $batch: dnnc $d ms, pytorch $t ms; pytorch/dnnc = $(awk -v a="$t" -v b="$d" 'BEGIN { printf "%.2f", a / b }')x"
done
