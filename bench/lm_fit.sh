# lm_fit.sh -- sourced by bench/char_lstm_fit.sh and bench/char_lm_compare.sh:
#   dnnc_fit LIB T STEPS   trains the text model LIB (windows of T bytes,
#                          batch 32) for about STEPS steps on $files
#                          (comma-separated) with dnnrun in $build, working
#                          in $work; prints "dnnc steps S seconds X held-out
#                          bits/char B (E epochs of L windows)".
# An epoch is train_bytes / T windows (docs/dnnrun.md), so E epochs of at
# most 32 * STEPS / E windows each (--limit, which also caps the held-out
# windows: it stays above their ~1900 here); seconds: dnnrun's own train
# time, which leaves out the evaluations.
dnnc_fit() {
    windows=0
    for f in $(echo "$files" | tr ',' ' '); do
        len=$(wc -c < "$f")
        windows=$((windows + (len - len / 10) / $2))
    done
    want=$(($3 * 32))
    epochs=$(( (want + windows - 1) / windows ))
    limit=$(( (want + epochs - 1) / epochs ))
    "$build/dnnrun" train "$1" --data "text:$files" --epochs "$epochs" --batch 32 --limit "$limit" \
        --seed 1 --save "$work/w.safetensors" > "$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
    per=$(sed -n 's/.* step [0-9]*\/\([0-9]*\) .*/\1/p' "$work/log" | tail -1)
    secs=$(sed -n 's/.*done: train time \([0-9.]*\) s.*/\1/p' "$work/log" | awk '{ s += $1 } END { printf "%.0f", s }')
    bpc=$(grep 'done: train time' "$work/log" | tail -1 | sed 's/.*held-out loss [0-9.]*, \([0-9.]*\) bits\/char.*/\1/')
    echo "dnnc steps $((epochs * per)) seconds $secs held-out bits/char $bpc ($epochs epochs of $limit windows)"
}
