#!/bin/sh
# tests/fuzz/make_corpus.sh -- regenerates the committed seed corpora of
# the libFuzzer harnesses, tests/fuzz/corpus/<harness>/, from the tree.
#
# usage: sh tests/fuzz/make_corpus.sh [DNNC]
#
#   fuzz_frontend     every .dnn of examples/ and tests/*/, plus generated
#                     models: long pipe chains, deep nesting of parentheses
#                     and repeats, huge and odd numbers
#   fuzz_ir_read      the golden IR of tests/ir/ (without its NOTE line) and
#                     the graphs of tests/passes/; with DNNC (a built dnnc),
#                     also the optimized training graph of every model with
#                     a train section (loss and optimizer lines)
#   fuzz_safetensors  the small golden files (tests/golden/*_infer and
#                     optim_goldens) and hand-written headers: metadata,
#                     every dtype, empty tensors, odd offsets
#   fuzz_idx          harness inputs (tests/fuzz/fuzz_idx.c: limit byte,
#                     images length, images file, labels file): raw and
#                     gzip'd pairs, Fashion-MNIST's headers, damaged pairs
#
# Every file is small (the corpus stays well under 1 MB); review the diff.
# shellcheck disable=SC2059 # octal escapes built at run time are printf formats
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dnnc=$1
out=$here/corpus
# regress-* files are inputs a fuzzer found and a fix was tested on: kept
find "$out" -type f ! -name 'regress-*' -delete 2>/dev/null || true
mkdir -p "$out/fuzz_frontend" "$out/fuzz_ir_read" "$out/fuzz_safetensors" "$out/fuzz_idx"

# ---- .dnn sources -------------------------------------------------------------
cd "$root"
# (not unroll_budget.dnn: it takes a second to reach the budget, and so would
# every mutant of it)
for f in examples/*.dnn tests/*/*.dnn; do
    [ "$f" != tests/diag/unroll_budget.dnn ] || continue
    cp "$f" "$out/fuzz_frontend/$(echo "$f" | tr / _)"
done

# 'rep N TEXT' prints TEXT N times.
rep() {
    i=0
    while [ "$i" -lt "$1" ]; do
        printf '%s' "$2"
        i=$((i + 1))
    done
}
fe=$out/fuzz_frontend
{
    echo 'model m(x: f32[N, 4]) -> (y: f32[N, 4]) {'
    printf '  y = x'
    rep 300 ' |> relu'
    printf '\n}\n'
} >"$fe/gen_long_chain.dnn"
{
    echo 'model m(x: f32[N, 4]) -> (y: f32[N, 4]) {'
    printf '  y = x'
    rep 60 ' |> dense(4) |> tanh'
    printf '\n}\n'
    printf 'train m {\n  t: f32[N, 4]\n  loss = mse(y, t)\n  optimizer = sgd(lr=0.1)\n}\n'
} >"$fe/gen_long_chain_train.dnn"
{
    echo 'model m(x: f32[N, 4]) -> (y: f32[N, 4]) {'
    printf '  y = '
    rep 150 '('
    printf 'x'
    rep 150 ')'
    printf '\n}\n'
} >"$fe/gen_deep_parens.dnn"
{
    echo 'model m(x: f32[N, 4]) -> (y: f32[N, 4]) {'
    printf '  y = x |> dense('
    rep 100 '('
    printf '2 * 2'
    rep 100 ')'
    printf ')\n}\n'
} >"$fe/gen_deep_hyper.dnn"
{
    echo 'model m(x: f32[N, 4]) -> (y: f32[N, 4]) {'
    echo '  y = x'
    rep 100 '  repeat 1 {
'
    echo '  y = y |> relu'
    rep 100 '  }
'
    echo '}'
} >"$fe/gen_deep_repeat.dnn"
{
    echo 'model m(x: f32[N, 4]) -> (y: f32[N, 4]) {'
    echo '  y = x |> dense(99999999999999999999) |> dense(4611686018427387904) |> dense(-0x7fffffffffffffff)'
    echo '  z = x |> dropout(1e999) |> dropout(-1e-999) |> dense(0x10)'
    echo '}'
    echo 'train m {'
    echo '  t: f32[N, 4611686018427387904]'
    echo '  loss = mse(y, t)'
    echo '  optimizer = adam(lr=1e999, schedule=cosine(total_steps=18446744073709551616))'
    echo '}'
} >"$fe/gen_huge_numbers.dnn"
{
    echo 'model m(x: f32[N, 4611686018427387904, 4611686018427387904]) -> (y: f32[N, 9223372036854775807]) {'
    echo '  y = flatten(x) |> dense(2147483648)'
    echo '}'
} >"$fe/gen_huge_shapes.dnn"

# ---- IR text ------------------------------------------------------------------
for f in tests/ir/*.ir; do tail -n +2 "$f" >"$out/fuzz_ir_read/$(basename "$f")"; done
for f in tests/passes/*.dnir; do cp "$f" "$out/fuzz_ir_read/"; done
if [ -n "$dnnc" ]; then
    for f in examples/*.dnn tests/golden/*.dnn; do
        # (a file with several models needs --model; its models are in the .dnn corpus)
        if grep -q '^train ' "$f" && [ "$(grep -c '^model ' "$f")" -eq 1 ]; then
            b=$(basename "$f" .dnn)
            "$dnnc" "$f" --emit=ir-opt --graph=train >"$out/fuzz_ir_read/opt_train_$b.ir"
            [ "$(wc -c <"$out/fuzz_ir_read/opt_train_$b.ir")" -le 16384 ] || rm "$out/fuzz_ir_read/opt_train_$b.ir"
        fi
    done
fi

# ---- safetensors --------------------------------------------------------------
cp tests/golden/*_infer.safetensors tests/golden/optim_goldens.safetensors "$out/fuzz_safetensors/"
# 'st NAME HEADER DATA-BYTES' writes the 8-byte little-endian header length,
# the header and DATA-BYTES zero bytes.
st() {
    n=$(printf '%s' "$2" | wc -c)
    printf "$(printf '\\%03o\\%03o\\%03o\\000\\000\\000\\000\\000' $((n % 256)) $((n / 256 % 256)) $((n / 65536 % 256)))" \
        >"$out/fuzz_safetensors/$1"
    printf '%s' "$2" >>"$out/fuzz_safetensors/$1"
    head -c "$3" /dev/zero >>"$out/fuzz_safetensors/$1"
}
st gen_dtypes.safetensors '{"__metadata__":{"format":"pt","k\"\\":"v\n"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"I32","shape":[4],"data_offsets":[24,40]},"c":{"dtype":"I64","shape":[],"data_offsets":[40,48]},"e":{"dtype":"F32","shape":[0,5],"data_offsets":[48,48]},"h":{"dtype":"F16","shape":[2],"data_offsets":[48,52]}}' 52
st gen_empty.safetensors '{}' 0
st gen_overlap.safetensors '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}' 12
st gen_huge_shape.safetensors '{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}' 16
st gen_unicode.safetensors '{"\u00e9\ud83d\ude00":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]},"b\u0000":{"dtype":"BOOL","shape":[1],"data_offsets":[2,3]}}' 8

# ---- IDX pairs ------------------------------------------------------------------
# 'be32 N' prints N as 4 big-endian bytes; 'pair NAME LIMIT IMAGES LABELS'
# writes one harness input from two files.
be32() { printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)))"; }
pair() {
    {
        printf "$(printf '\\%03o' "$2")"
        be32 "$(wc -c <"$3")"
        cat "$3" "$4"
    } >"$out/fuzz_idx/$1"
}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
{ be32 2051; be32 3; be32 2; be32 2; printf '\001\002\003\004\005\006\007\010\011\012\013\014'; } >"$t/img"
{ be32 2049; be32 3; printf '\000\001\011'; } >"$t/lab"
pair raw 0 "$t/img" "$t/lab"
pair raw_limit 2 "$t/img" "$t/lab"
gzip -n -c "$t/img" >"$t/img.gz"
gzip -n -c "$t/lab" >"$t/lab.gz"
pair gzip 0 "$t/img.gz" "$t/lab.gz"
pair gzip_raw 1 "$t/img.gz" "$t/lab"
{ be32 2049; be32 4; printf '\000\001\011\002'; } >"$t/lab4"
pair count_mismatch 0 "$t/img" "$t/lab4"
{ cat "$t/img"; printf '\377'; } >"$t/img_long"
pair too_long 0 "$t/img_long" "$t/lab"
pair swapped 0 "$t/lab" "$t/img"
{ be32 2051; be32 60000; be32 28; be32 28; } >"$t/fm_img"
{ be32 2049; be32 60000; } >"$t/fm_lab"
pair fashion_headers 0 "$t/fm_img" "$t/fm_lab"
# (no header that declares gigabytes: dn_idx_load allocates what the header
# says before reading, and every run would stop at once on that finding)
echo "make_corpus: $(find "$out" -type f | wc -l) files, $(du -sk "$out" | cut -f1) KiB in $out"
