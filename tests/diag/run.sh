#!/bin/sh
# tests/diag/run.sh -- diagnostic tests for the frontend.
#
# usage: sh tests/diag/run.sh DNNC [FILECHECK]
#
# Each tests/diag/*.dnn is malformed or ill-typed on purpose and lists the
# diagnostics it must produce as comment lines
#     # expect: LINE:COL: error: MESSAGE
# The runner compiles each file with 'dnnc --emit=ir NAME.dnn' from this
# folder and requires exit status exactly 1 (a crash or signal fails) and
# every expected line to appear verbatim as NAME.dnn:LINE:COL: error: MESSAGE
# on stderr.  FILECHECK is accepted for uniformity with the other suites and
# not used.  Prints each failure; exits 1 if any test failed.
dnnc=$1
if [ -z "$dnnc" ]; then
    echo "usage: sh $0 DNNC [FILECHECK]" >&2
    exit 2
fi
case $dnnc in /*) ;; *) dnnc=$(pwd)/$dnnc ;; esac
here=$(cd "$(dirname "$0")" && pwd)
cd "$here" || exit 2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

total=0
failed=0
for f in *.dnn; do
    total=$((total + 1))
    "$dnnc" --emit=ir "$f" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    ok=1
    if [ "$rc" -ne 1 ]; then
        echo "FAIL $f: exit status $rc, expected 1"
        ok=0
    fi
    if ! grep -aq '^# expect: ' "$f"; then
        echo "FAIL $f: no '# expect:' line"
        ok=0
    fi
    grep -a '^# expect: ' "$f" | sed 's/^# expect: //' >"$tmp/want"
    while IFS= read -r want; do
        if ! grep -aqF -- "$f:$want" "$tmp/err"; then
            echo "FAIL $f: missing diagnostic: $f:$want"
            ok=0
        fi
    done <"$tmp/want"
    if [ $ok -eq 0 ]; then
        failed=$((failed + 1))
        echo "---- stderr of $f:"
        cat "$tmp/err"
        echo "----"
    fi
done
echo "diag: $((total - failed)) of $total passed"
[ "$failed" -eq 0 ] && [ "$total" -gt 0 ]
