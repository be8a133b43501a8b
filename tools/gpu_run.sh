#!/bin/bash
# Runs kiln's GPU tests and benchmarks on the device machine, from the
# folder that tools/gpu_prepare.sh fills (carried as .tmp/gpu). Logs go to
# $OUT (or /tmp/gpu-out). KILN_GPU_TESTS=0 skips the tests,
# KILN_BENCH_EXTRA=0 the CNN/GEMM-shape/MNIST benches.
set -o pipefail
D=${1:-.tmp/gpu}
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
ROOT=$PWD
cd "$D" || exit 1
export KILN_SHARED=$PWD/shared KILN_MNIST_DIR=$PWD/mnist KILN_CUDA_CACHE=$PWD/cache
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,utilization.gpu --format=csv
if [ "${KILN_GPU_TESTS:-1}" != 0 ]; then
	echo "== gpu/cuda tests"
	./gpu_cuda.test -test.v -test.timeout 120s 2>&1 | tee "$OUT/gpu_cuda.log" | grep -E "^(--- FAIL|FAIL|ok|PASS)|NVRTC|panic" | head -40
	echo "== backend/cuda tests"
	./backend_cuda.test -test.v -test.timeout ${KILN_TEST_TIMEOUT:-300}s 2>&1 | tee "$OUT/backend_cuda.log" | grep -E "^(--- FAIL|FAIL|ok|PASS)|panic|models_test|timing:|_test.go:[0-9]+: .*(MSE [0-9.e-]+ >|differ from|not on the GPU|run:|decode:)" | head -80
fi
echo "== bench (kiln)"
EXTRA=""
[ "${KILN_BENCH_EXTRA:-1}" != 0 ] && EXTRA="-extra -shapes"
timeout ${KILN_BENCH_TIMEOUT:-300} ./gpu_bench -models shared/models -mnist "$KILN_MNIST_DIR" -iters ${KILN_BENCH_ITERS:-20} -tacticlog "$OUT/tactics.log" $EXTRA 2>&1 | tee "$OUT/kiln.jsonl" | cut -c1-400
echo "== bench (PyTorch) and table"
PYEXTRA=""
[ "${KILN_BENCH_EXTRA:-1}" != 0 ] && PYEXTRA="--extra"
PYTHONUNBUFFERED=1 timeout ${KILN_TORCH_TIMEOUT:-150} python3 "$ROOT/tools/gpu_bench.py" --kiln-json "$OUT/kiln.jsonl" --out "$OUT/bench.md" --iters ${KILN_BENCH_ITERS:-20} $PYEXTRA 2>&1 | tail -60
