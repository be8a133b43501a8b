#!/bin/bash
# Per-step GPU profile of kiln's ResNet-50 light and mobilenetv2 engines
# (gpu_bench -profile) and PyTorch's per-kernel profile of the same models
# (tools/gpu_torch_profile.py), in one device call. Run from the repository
# root on the device machine with .tmp/gpu carried (tools/gpu_prepare.sh).
# PRECS (default fp16,int8), NHWC (on, off or both; default both), BATCH
# (256), ITERS (5); TESTS=regex first runs those backend/cuda GPU tests
# (and all gpu/cuda ones); CNN=1 also times the engines end to end with
# graphs on (gpu_bench -cnn; CNN_GRAPHS=0: eager, so that gpu_ms is compute
# alone, without the input's DMA that a replayed graph includes); TORCH=0
# skips PyTorch; PROFILE=0 skips the per-step profile.
set -o pipefail
D=${1:-.tmp/gpu}
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
ROOT=$PWD
cd "$D" || exit 1
export KILN_SHARED=$PWD/shared KILN_MNIST_DIR=$PWD/mnist KILN_CUDA_CACHE=$PWD/cache
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv
if [ -n "$TESTS" ]; then
	echo "== gpu/cuda tests"
	timeout 150 ./gpu_cuda.test -test.v -test.timeout 120s > "$OUT/gpu_cuda.log" 2>&1
	grep -E "^(--- FAIL|FAIL|ok|PASS)|NVRTC|panic|error" "$OUT/gpu_cuda.log" | head -30
	echo "== backend/cuda tests ($TESTS)"
	# (to a file first: a pipe closed early by head would kill the tests)
	timeout $((${T_TEST:-240} + 20)) ./backend_cuda.test -test.v -test.run "$TESTS" -test.timeout ${T_TEST:-240}s > "$OUT/backend_cuda.log" 2>&1
	echo "backend/cuda tests exit $?"
	grep -E "^(--- FAIL|FAIL|ok|PASS)|^    --- FAIL|panic|NVRTC|batch 2:|nhwc=.*steps|_test.go:[0-9]+: .*(MSE [0-9.e-]+ >|not on the GPU|run:|decode:|shapes:|reference:)" "$OUT/backend_cuda.log" | head -60
fi
if [ "${PROFILE:-1}" != 0 ]; then
	echo "== profile"
	timeout ${KILN_PROFILE_TIMEOUT:-240} ./gpu_bench -models shared/models -batch ${BATCH:-256} -iters ${ITERS:-5} \
		-profile ${PRECS:-fp16,int8} -nhwc ${NHWC:-both} -tacticlog "$OUT/tactics.log" > "$OUT/profile.txt" 2>&1
	echo "gpu_bench -profile exit $?"
	grep -E -A12 '^---|^(resnet50|mobilenetv2) .*:' "$OUT/profile.txt"
fi
if [ "${CNN:-0}" != 0 ]; then
	echo "== timed (graphs ${CNN_GRAPHS:-1}, medians of ${CNN_ITERS:-20})"
	KILN_CUDA_GRAPHS=${CNN_GRAPHS:-1} timeout ${KILN_CNN_TIMEOUT:-200} ./gpu_bench -models shared/models -batch ${BATCH:-256} -iters ${CNN_ITERS:-20} \
		-cnn ${PRECS:-fp16,int8} -nhwc ${NHWC:-both} > "$OUT/cnn.jsonl" 2>&1
	echo "gpu_bench -cnn exit $?"
	cut -c1-300 "$OUT/cnn.jsonl"
fi
if [ "${TORCH:-1}" != 0 ]; then
	PYTHONUNBUFFERED=1 timeout ${KILN_TORCH_TIMEOUT:-150} python3 "$ROOT/tools/gpu_torch_profile.py" --batch ${BATCH:-256} > "$OUT/torch_profile.txt" 2>&1
	echo "torch exit $?"
	grep -E "^(torch|resnet50|mobilenetv2)" "$OUT/torch_profile.txt"
fi
