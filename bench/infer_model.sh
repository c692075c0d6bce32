#!/bin/sh
# infer_model.sh -- inference latency of one model: dnnc (bench/infer_bench.c
# driving the library compiled without training) against PyTorch (the
# model's bench/torch_*.py infer: eval mode, no_grad) and, for the
# Transformer models when ORT_PYTHON names a Python with onnxruntime, ONNX
# Runtime on the same module exported to ONNX; same thread count,
# alternating runs; prints medians and ratios.  bench/infer_lenet.sh and
# bench/infer_resnet.sh call it with their model.
#
#   bench/infer_model.sh -m lenet|resnet18|vit_tiny|encoder6 [-t THREADS] [-r ROUNDS] [-n REPS] [-B "BATCHES"] [-b BUILD_DIR]
#
# Per model (defaults of -n and -B): lenet (bench/lenet_adam.dnn): 500 calls,
# batches "1 64"; resnet18 (examples/resnet.dnn, 3x224x224): 10 calls after
# 2 warm-up calls, batches "1 8"; vit_tiny (examples/vit_tiny.dnn) and
# encoder6 (bench/encoder6.dnn, 6 layers d 512 at sequence 128), against
# bench/torch_transformer.py: 10 calls after 2, batches "1 8".  Always 1
# thread, 3 rounds, ./build unless given.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
model="" threads=1 rounds=3 reps="" batches="" build="$here/../build"
while getopts m:t:r:n:b:B: opt; do
    case $opt in
    m) model=$OPTARG ;; t) threads=$OPTARG ;; r) rounds=$OPTARG ;; n) reps=$OPTARG ;; b) build=$OPTARG ;;
    B) batches=$OPTARG ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
    esac
done
case $model in
lenet) title="LeNet-5" dnn="$here/lenet_adam.dnn" py="$here/torch_lenet.py" n=500 warm=20 b="1 64" ;;
resnet18) title="ResNet-18" dnn="$here/../examples/resnet.dnn" py="$here/torch_resnet.py" n=10 warm=2 b="1 8" ;;
vit_tiny | encoder6)
    title=$model py="$here/torch_transformer.py" n=10 warm=2 b="1 8" ort=${ORT_PYTHON:-}
    dnn="$here/../examples/vit_tiny.dnn"
    [ "$model" = encoder6 ] && dnn="$here/encoder6.dnn"
    ;;
*) echo "infer_model.sh: -m lenet, resnet18, vit_tiny or encoder6" >&2; exit 2 ;;
esac
ort=${ort:-}
pyargs=""
[ "$py" = "$here/torch_transformer.py" ] && pyargs="--model $model"
reps=${reps:-$n} batches=${batches:-$b}
python=${PYTHON:-/usr/bin/python3}
[ -x "$build/dnnc" ] || { echo "infer_model.sh: $build/dnnc missing: build the project first (-b BUILD_DIR)" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null || { echo "infer_model.sh: $python has no torch (set PYTHON)" >&2; exit 1; }
work=$(mktemp -d /tmp/dnnc-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$build/dnnc" "$dnn" --no-train -o "$work/model.so"
${CC:-cc} -std=gnu11 -O2 -I"$here/../runtime/include" "$here/infer_bench.c" -o "$work/infer_bench" -ldl
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads DNRT_THREADS=$threads

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "$title inference, $threads thread(s), median of $rounds rounds x $reps calls"
for batch in $batches; do
    : > "$work/d" && : > "$work/t" && : > "$work/o"
    r=1
    while [ "$r" -le "$rounds" ]; do
        "$work/infer_bench" "$work/model.so" "$batch" "$threads" "$reps" "$warm" | sed 's/.*median \([0-9.]*\) ms/\1/' >> "$work/d"
        # shellcheck disable=SC2086
        "$python" "$py" infer $pyargs --threads "$threads" --batch "$batch" --reps "$reps" --warmup "$warm" \
            | sed 's/.*median \([0-9.]*\) ms/\1/' >> "$work/t"
        if [ -n "$ort" ]; then
            # shellcheck disable=SC2086
            "$ort" "$py" infer $pyargs --ort --threads "$threads" --batch "$batch" --reps "$reps" --warmup "$warm" \
                | sed 's/.*median \([0-9.]*\) ms/\1/' >> "$work/o"
        fi
        r=$((r + 1))
    done
    d=$(median < "$work/d")
    t=$(median < "$work/t")
    line="batch $batch: dnnc $d ms, pytorch $t ms; pytorch/dnnc = $(awk -v a="$t" -v b="$d" 'BEGIN { printf "%.2f", a / b }')x"
    if [ -n "$ort" ]; then
        o=$(median < "$work/o")
        line="$line; onnxruntime $o ms, onnxruntime/dnnc = $(awk -v a="$o" -v b="$d" 'BEGIN { printf "%.2f", a / b }')x"
    fi
    echo "$line"
done
