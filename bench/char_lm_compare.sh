#!/bin/sh
# char_lm_compare.sh -- the character Transformer (examples/char_transformer.dnn,
# windows of 128 bytes) against the character LSTM (examples/char_lstm.dnn,
# windows of 50) at the same training time, both trained by dnnrun on the
# same text (the last 10% of each file held out), batch 32: held-out bits
# per character after MINUTES of training each.
#
#   bench/char_lm_compare.sh [-m MINUTES] [-t THREADS] [-b BUILD_DIR] [-f FILES]
#
# Each model first runs 100 steps to measure its rate, then as many steps as
# fit in MINUTES at that rate.  Defaults: 5 minutes, 2 threads, ./build, the
# Spanish fortunes of Debian's fortunes-es.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
minutes=5 threads=2 build="$here/../build" files=
while getopts m:t:b:f: opt; do
    case $opt in
    m) minutes=$OPTARG ;; t) threads=$OPTARG ;; b) build=$OPTARG ;; f) files=$OPTARG ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
    esac
done
[ -x "$build/dnnc" ] || { echo "char_lm_compare.sh: $build/dnnc missing: build the project first (-b BUILD_DIR)" >&2; exit 1; }
if [ -z "$files" ]; then
    dir=/usr/share/games/fortunes/es
    [ -d "$dir" ] || { echo "char_lm_compare.sh: $dir missing: apt-get install fortunes-es, or pass -f FILES" >&2; exit 1; }
    files=$(find "$dir" -maxdepth 1 -type f -name '*.fortunes' | sort | paste -sd, -)
fi
work=$(mktemp -d /tmp/dnnc-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$build/dnnc" "$here/../examples/char_lstm.dnn" --model char_lstm -o "$work/lstm.so"
"$build/dnnc" "$here/../examples/char_transformer.dnn" --model char_transformer -o "$work/transformer.so"
export DNRT_THREADS=$threads
. "$here/lm_fit.sh"

echo "$minutes minute(s) of training each, $threads threads"
for m in lstm:50 transformer:128; do
    name=${m%:*} t=${m#*:}
    rate=$(dnnc_fit "$work/$name.so" "$t" 100 | sed -n 's/^dnnc steps \([0-9]*\) seconds \([0-9]*\) .*/\1 \2/p')
    steps=$(echo "$rate" | awk -v m="$minutes" '{ s = $2 > 0 ? $2 : 1; printf "%d", $1 * m * 60 / s }')
    echo "$name: $(dnnc_fit "$work/$name.so" "$t" "$steps")"
done
