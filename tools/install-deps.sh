#!/bin/sh
# install-deps.sh -- installs what dnnc needs to build, test and run its demo
# on Debian 12, from Debian's own packages only (clang-format, version 14
# there, is for .ci/run's formatting check).  Idempotent; run as root.
set -e
PKGS="build-essential cmake pkg-config llvm-19-dev llvm-19-tools libcriterion-dev zlib1g-dev dataset-fashion-mnist clang-format
      ocl-icd-libopencl1 ocl-icd-opencl-dev pocl-opencl-icd fortunes-es"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing
fi
