#!/usr/bin/env bash
# The project's test command (README: "Run the tests"). Installs the ONNX
# Runtime oracle from the npm registry when node is present, then vets and
# tests everything, also with -tags noasm and with the kernels capped at AVX2
# (KILN_CPU_ISA=avx2), and under the race detector where
# that is affordable on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:-}"

go version
go mod download

# ONNX Runtime (CPU) as the oracle for differential tests. ../shared is
# read-only in CI, so it is installed in a git-ignored copy.
if [ -z "${KILN_ORT_DIR:-}" ] && command -v node >/dev/null && [ -d ../shared/tools/ort ]; then
  if [ ! -d .tmp/ort/node_modules/onnxruntime-node ]; then
    rm -rf .tmp/ort && mkdir -p .tmp && cp -r ../shared/tools/ort .tmp/ort && chmod -R u+w .tmp/ort
    (cd .tmp/ort && npm ci --no-audit --no-fund --loglevel=error) || echo "warning: npm ci failed; ONNX Runtime tests will skip"
  fi
  [ -d .tmp/ort/node_modules/onnxruntime-node ] && export KILN_ORT_DIR="$PWD/.tmp/ort"
fi
echo "KILN_ORT_DIR=${KILN_ORT_DIR:-<not installed>}"

go vet ./...
go vet -tags noasm ./...
# The committed assembly is what its avo generators write.
bash scripts/check-generated.sh
go test -count=1 ./...
# The portable twins of every assembly kernel, and everything that calls them,
# once more with the assembly switched off.
go test -count=1 -tags noasm ./kernels/... ./backend/cpu/...
# What a CPU without AVX-512 runs (AVX2+FMA micro-kernels, the AVX2 INT8
# kernel, Go twins of the AVX-512-only routines), whole engines included.
KILN_CPU_ISA=avx2 go test -count=1 ./kernels/... ./backend/cpu/...
# The race detector multiplies run time; these packages run concurrent code
# (sessions, worker pools, trainer workers, calibration collectors, engine
# contexts) and stay affordable (backend/cpu in -short mode).
go test -count=1 -race ./ir ./ops ./onnx ./quant ./quant/calib ./tensorio ./engine ./kernels/parallel ./kernels/gemm ./train
go test -count=1 -race -short ./backend/cpu
