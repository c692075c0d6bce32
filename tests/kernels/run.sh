#!/bin/sh
# tests/kernels/run.sh -- FileCheck tests of the GPU kernels as rendered text:
# each tests/kernels/<name>.dnir runs dnnc --target=cuda|opencl --emit=code
# and checks the kernel source (the dialect and both preludes).  The runner
# is the pass tests' (tests/passes/run.sh), on this folder.
#
# usage: sh tests/kernels/run.sh DNNC [FILECHECK]
exec sh "$(dirname "$0")/../passes/run.sh" "$1" "$2" "$(dirname "$0")"
