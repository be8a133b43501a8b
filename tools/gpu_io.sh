#!/bin/bash
# Runs on the device machine (from the folder tools/gpu_prepare.sh fills,
# carried as .tmp/gpu) the checks and timings of pinned staging and CUDA
# graphs: gpu/cuda's GPU tests, backend/cuda's graph/pinned tests, the
# end-to-end I/O bench (gpu_bench -io), then backend/cuda's other GPU tests
# in the time left. Each part has its own time limit (seconds, env).
set -o pipefail
D=${1:-.tmp/gpu}
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
cd "$D" || exit 1
export KILN_SHARED=$PWD/shared KILN_MNIST_DIR=$PWD/mnist KILN_CUDA_CACHE=$PWD/cache
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv
nproc
echo "== gpu/cuda tests"
timeout ${T_CUDA:-25} ./gpu_cuda.test -test.v 2>&1 | tee "$OUT/gpu_cuda.log" | grep -E "^(--- |FAIL|ok|PASS)|panic|GB/s" | head -40
echo "== backend/cuda graph and pinned tests"
timeout ${T_GRAPH:-75} ./backend_cuda.test -test.v -test.run 'TestGraph|TestCopyPar' 2>&1 | tee "$OUT/graphs.log" | grep -E "^ *(--- |FAIL|ok|PASS)|panic|captures|graphs_test|kiln cuda" | head -40
echo "== io bench"
timeout ${T_IO:-70} ./gpu_bench -io -models shared/models -iters ${ITERS:-20} 2>&1 | tee "$OUT/io.jsonl" | cut -c1-500
echo "== backend/cuda other GPU tests"
timeout ${T_REST:-45} ./backend_cuda.test -test.v -test.skip 'TestGraph|TestCopyPar' 2>&1 | tee "$OUT/backend_cuda.log" | grep -E "^ *(--- |FAIL|ok|PASS)|panic" | head -60
echo "== done"
