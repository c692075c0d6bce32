#!/bin/sh
# tests/passes/run.sh -- FileCheck tests of the graph passes and the memory plan
# (and, run by tests/kernels/run.sh on that folder, of the rendered GPU kernels).
#
# usage: sh tests/passes/run.sh DNNC [FILECHECK [FOLDER]]
#
# Each FOLDER/<name>.dnir (default FOLDER: this one) is a graph in the IR text form
# (docs/ir.md) whose comment lines hold lit-style commands and FileCheck
# patterns:
#     // RUN: %dnnc %s --passes=fuse-conv --emit=ir-opt | %FileCheck %s
#     // CHECK: conv2d {{.*}} act = "relu"
# Every '// RUN:' line of every file runs with sh from this folder, with
#     %dnnc       DNNC, whose exit status must be 0
#     not %dnnc   DNNC, whose exit status must be 1 (an error, not a crash)
#     %FileCheck  FILECHECK
#     %s          the file's name
# A file fails when it has no RUN line, when a RUN line exits non-zero, or
# when dnnc's exit status is not the expected one (checked even inside a
# pipeline, where sh would only see FileCheck's status).  Each failure is
# printed with the expanded command and its output.  FILECHECK defaults to
# FileCheck-19 (on PATH, in /usr/bin or in llvm-config-19 --bindir); when
# none is found the suite fails.  Exits 0 only if every file passed.
dnnc=$1
filecheck=$2
if [ -z "$dnnc" ]; then
    echo "usage: sh $0 DNNC [FILECHECK]" >&2
    exit 2
fi
case $dnnc in /*) ;; *) dnnc=$(pwd)/$dnnc ;; esac
case $filecheck in *-NOTFOUND) filecheck= ;; esac # CMake found none
if [ -z "$filecheck" ]; then
    for c in "$(command -v FileCheck-19)" /usr/bin/FileCheck-19 \
        "$(llvm-config-19 --bindir 2>/dev/null)/FileCheck"; do
        if [ -n "$c" ] && [ -x "$c" ]; then
            filecheck=$c
            break
        fi
    done
fi
case $filecheck in '' | /*) ;; *) filecheck=$(pwd)/$filecheck ;; esac
if [ -z "$filecheck" ] || [ ! -x "$filecheck" ]; then
    echo "FAIL ${3:-passes}: FileCheck not found (${filecheck:-looked for FileCheck-19};" \
        "install llvm-19-tools or pass its path as the second argument)"
    exit 1
fi
here=$(cd "${3:-$(dirname "$0")}" && pwd) || exit 2
suite=$(basename "$here")
cd "$here" || exit 2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

# The RUN lines call these wrappers, which log a wrong dnnc exit status to
# $DN_PASSES_LOG, so it is seen even where a pipe hides it.
cat >"$tmp/dnnc" <<'EOF'
#!/bin/sh
"$DN_PASSES_DNNC" "$@"
rc=$?
[ $rc -eq 0 ] || echo "dnnc exited with status $rc" >>"$DN_PASSES_LOG"
exit $rc
EOF
cat >"$tmp/not-dnnc" <<'EOF'
#!/bin/sh
"$DN_PASSES_DNNC" "$@"
rc=$?
[ $rc -eq 1 ] || echo "not dnnc: dnnc exited with status $rc, expected 1" >>"$DN_PASSES_LOG"
exit 0
EOF
DN_PASSES_DNNC=$dnnc
DN_PASSES_LOG=$tmp/log
export DN_PASSES_DNNC DN_PASSES_LOG

# Escapes '\', '&' and '|' for the replacement side of sed s|||.
sed_escape() { printf '%s\n' "$1" | sed 's/[\\&|]/\\&/g'; }
w_dnnc=$(sed_escape "sh '$tmp/dnnc'")
w_not=$(sed_escape "sh '$tmp/not-dnnc'")
w_fc=$(sed_escape "'$filecheck'")

total=0
failed=0
for f in *.dnir; do
    [ -e "$f" ] || continue
    total=$((total + 1))
    grep '^// RUN: ' "$f" | sed 's|^// RUN: ||' >"$tmp/runs"
    if [ ! -s "$tmp/runs" ]; then
        echo "FAIL $f: no '// RUN:' line"
        failed=$((failed + 1))
        continue
    fi
    ok=1
    w_file=$(sed_escape "'$f'")
    while IFS= read -r run; do
        cmd=$(printf '%s\n' "$run" | sed -e "s|not %dnnc|$w_not|g" -e "s|%dnnc|$w_dnnc|g" \
            -e "s|%FileCheck|$w_fc|g" -e "s|%s|$w_file|g")
        : >"$tmp/log"
        sh -c "$cmd" >"$tmp/out" 2>&1 </dev/null
        rc=$?
        if [ $rc -ne 0 ] || [ -s "$tmp/log" ]; then
            [ $ok -eq 1 ] && echo "FAIL $f:"
            ok=0
            echo "  RUN: $run"
            [ $rc -ne 0 ] && echo "  exit status $rc"
            sed 's/^/  /' "$tmp/log"
            echo "---- output:"
            cat "$tmp/out"
            echo "----"
        fi
    done <"$tmp/runs"
    [ $ok -eq 1 ] || failed=$((failed + 1))
done
echo "$suite: $((total - failed)) of $total passed"
[ "$failed" -eq 0 ] && [ "$total" -gt 0 ]
