#!/bin/sh
# char_lstm_fit.sh -- held-out bits per character of the character LSTM
# language model (examples/char_lstm.dnn) after the same training budget,
# dnnc (dnnrun train --data text:FILES) against the same model and recipe
# in PyTorch (bench/torch_char_lstm.py fit): the last 10% of each file held
# out, windows of 51 bytes at random offsets, Adam 2e-3, batch 32.
#
#   bench/char_lstm_fit.sh [-m MINUTES] [-t THREADS] [-b BUILD_DIR] [-f FILES] [-s STEPS]
#
# Three runs, one after the other, each with THREADS threads:
#   1. PyTorch for MINUTES minutes (its step count S is what fits);
#   2. dnnc for the same S steps (same steps: the recipes should agree);
#   3. dnnc for as many steps as fit in MINUTES at the rate of run 2
#      (same time: what the speed buys).
# -s STEPS skips run 1 and takes STEPS from an earlier one.  MINUTES is an
# integer.  Defaults: 10 minutes, 2 threads, ./build, the Spanish fortunes of Debian's
# fortunes-es (/usr/share/games/fortunes/es/*.fortunes, 24 files).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
minutes=10 threads=2 build="$here/../build" files= torch_steps=
while getopts m:t:b:f:s: opt; do
    case $opt in
    m) minutes=$OPTARG ;; t) threads=$OPTARG ;; b) build=$OPTARG ;; f) files=$OPTARG ;; s) torch_steps=$OPTARG ;;
    *) sed -n '2,18p' "$0"; exit 2 ;;
    esac
done
python=${PYTHON:-/usr/bin/python3}
[ -x "$build/dnnc" ] || { echo "char_lstm_fit.sh: $build/dnnc missing: build the project first (-b BUILD_DIR)" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null || { echo "char_lstm_fit.sh: $python has no torch (set PYTHON)" >&2; exit 1; }
if [ -z "$files" ]; then
    dir=/usr/share/games/fortunes/es
    [ -d "$dir" ] || { echo "char_lstm_fit.sh: $dir missing: apt-get install fortunes-es, or pass -f FILES" >&2; exit 1; }
    files=$(find "$dir" -maxdepth 1 -type f -name '*.fortunes' | sort | paste -sd, -)
fi
work=$(mktemp -d /tmp/dnnc-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$build/dnnc" "$here/../examples/char_lstm.dnn" --model char_lstm -o "$work/lm.so"
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads DNRT_THREADS=$threads

echo "files: $(echo "$files" | tr ',' '\n' | wc -l) ($(cat $(echo "$files" | tr ',' ' ') | wc -c) bytes); $threads threads"
[ -n "$torch_steps" ] ||
    "$python" "$here/torch_char_lstm.py" fit --files "$files" --minutes "$minutes" --threads "$threads" | tee "$work/torch"

. "$here/lm_fit.sh"
if [ -n "$torch_steps" ]; then steps=$torch_steps; else steps=$(sed -n 's/^fit steps \([0-9]*\) .*/\1/p' "$work/torch"); fi
[ -n "$steps" ] || { echo "char_lstm_fit.sh: no step count from torch_char_lstm.py" >&2; exit 1; }
dnnc_fit "$work/lm.so" 50 "$steps" | tee "$work/same_steps"
secs=$(sed -n 's/.* seconds \([0-9]*\) .*/\1/p' "$work/same_steps")
dnnc_fit "$work/lm.so" 50 $(( steps * minutes * 60 / (secs > 0 ? secs : 1) ))
