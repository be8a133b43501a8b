#!/bin/bash
# Compiles kiln's CUDA sources for sm_90 with clang's CUDA front end and
# no CUDA toolkit (-nocudainc -nocudalib, nvrtc_shim.h in front), the way
# NVRTC sees each module (kernels.go): common.cuh + kiln.cu; common.cuh +
# nhwc.cuh + igemm.cu; common.cuh + nhwc.cuh + wgmma.cu + wgmmap.cu + wgmmah.cu.
# Catches syntax and type errors before device time is spent; it does not
# replace the GPU tests (NVRTC may accept or reject what clang does not).
# Needs clang 16 or later (Debian: apt-get install clang-16). PTX goes to
# $PTX_DIR when set, e.g. to count a kernel's instructions:
#   PTX_DIR=/tmp/ptx bash tools/cudacheck/check.sh && grep -c . /tmp/ptx/wgmma.ptx
set -e
cd "$(dirname "$0")/../.."
CLANG=${CLANG:-$(command -v clang++-16 || command -v clang++ || true)}
[ -n "$CLANG" ] || { echo "cudacheck: no clang++ (apt-get install clang-16)" >&2; exit 2; }
K=gpu/cuda/kernels
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for mod in "kiln:$K/common.cuh $K/kiln.cu" "igemm:$K/common.cuh $K/nhwc.cuh $K/igemm.cu" \
    "wgmma:$K/common.cuh $K/nhwc.cuh $K/wgmma.cu $K/wgmmap.cu $K/wgmmah.cu"; do
    name=${mod%%:*}
    { echo "#include \"$PWD/tools/cudacheck/nvrtc_shim.h\""; for f in ${mod#*:}; do echo "#include \"$PWD/$f\""; done; } > "$tmp/$name.cu"
    # never -o /dev/null: clang replaced the device node with a regular file
    # (2026-11-26), which broke every later `go` command on the machine
    out=$tmp/$name.ptx
    [ -n "$PTX_DIR" ] && mkdir -p "$PTX_DIR" && out=$PTX_DIR/$name.ptx
    if "$CLANG" -x cuda --cuda-device-only --cuda-gpu-arch=sm_90 -nocudainc -nocudalib -std=c++17 -O1 -S \
        -Wno-unknown-cuda-version -o "$out" "$tmp/$name.cu" 2> "$tmp/$name.err"; then
        echo "cudacheck: $name compiles"
    else
        echo "cudacheck: $name fails:" >&2
        grep -E "error" -A3 "$tmp/$name.err" | sed "s#$PWD/##" | head -40 >&2
        fail=1
    fi
done
exit $fail
