#!/bin/sh
# lstm_lm.sh -- the character LSTM language model (examples/char_lstm.dnn)
# against the same model in PyTorch (bench/torch_char_lstm.py), same thread
# count, alternating runs; prints medians and ratios:
#   training throughput, tokens/s at batch B (train_step of char_lstm:
#     forward, cross-entropy at every position, backward, Adam), and
#   generation latency, ms per token at batch 1 (infer of char_lstm_step,
#     the state passed in and out; PyTorch: no_grad, state carried).
#
#   bench/lstm_lm.sh [-t THREADS] [-r ROUNDS] [-B BATCH] [-n REPS] [-b BUILD_DIR]
#
# Defaults: 1 thread, 3 rounds, batch 32, 10 timed training steps and 20x as
# many generation steps per round, ./build.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
threads=1 rounds=3 batch=32 reps=10 build="$here/../build"
while getopts t:r:B:n:b: opt; do
    case $opt in
    t) threads=$OPTARG ;; r) rounds=$OPTARG ;; B) batch=$OPTARG ;; n) reps=$OPTARG ;; b) build=$OPTARG ;;
    *) sed -n '2,14p' "$0"; exit 2 ;;
    esac
done
python=${PYTHON:-/usr/bin/python3}
[ -x "$build/dnnc" ] || { echo "lstm_lm.sh: $build/dnnc missing: build the project first (-b BUILD_DIR)" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null || { echo "lstm_lm.sh: $python has no torch (set PYTHON)" >&2; exit 1; }
work=$(mktemp -d /tmp/dnnc-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
dnn="$here/../examples/char_lstm.dnn"
"$build/dnnc" "$dnn" --model char_lstm -o "$work/train.so"
"$build/dnnc" "$dnn" --model char_lstm_step -o "$work/step.so"
${CC:-cc} -std=gnu11 -O2 -I"$here/../runtime/include" "$here/seq_bench.c" -o "$work/seq_bench" -ldl
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads DNRT_THREADS=$threads
steps=$((reps * 20))

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
field() { sed "s|.*$1 \\([0-9.]*\\).*|\\1|"; }

: > "$work/dt" && : > "$work/tt" && : > "$work/dg" && : > "$work/tg"
r=1
while [ "$r" -le "$rounds" ]; do
    "$work/seq_bench" "$work/train.so" train "$batch" "$threads" "$reps" | field tokens/s >> "$work/dt"
    "$python" "$here/torch_char_lstm.py" train --threads "$threads" --batch "$batch" --reps "$reps" | field tokens/s >> "$work/tt"
    "$work/seq_bench" "$work/step.so" infer 1 "$threads" "$steps" | field median >> "$work/dg"
    "$python" "$here/torch_char_lstm.py" step --threads "$threads" --reps "$steps" | field median >> "$work/tg"
    r=$((r + 1))
done
dt=$(median < "$work/dt") tt=$(median < "$work/tt") dg=$(median < "$work/dg") tg=$(median < "$work/tg")
echo "char_lstm (2x LSTM 128, embedding 64, 50-byte windows), $threads thread(s), median of $rounds rounds"
echo "train batch $batch: dnnc $dt tokens/s, pytorch $tt tokens/s; dnnc/pytorch = $(awk -v a="$dt" -v b="$tt" 'BEGIN { printf "%.2f", a / b }')x"
echo "generate batch 1: dnnc $dg ms/token, pytorch $tg ms/token; pytorch/dnnc = $(awk -v a="$tg" -v b="$dg" 'BEGIN { printf "%.2f", a / b }')x"
