// Command trainref writes what tools/torch_mnist_ref.py needs to replay
// kiln's SimpleCNN training in PyTorch step for step: the initial weights of a
// seed, the epoch-0 shuffled order of the training images, the gradients of
// the first step, the loss of every step and the weights after the last.
//
//	go run ./tools/trainref -seed 1 -steps 20 -dir /tmp/kiln-ref
//	/usr/bin/python3 tools/torch_mnist_ref.py replay --dir /tmp/kiln-ref
//
// Files written under -dir:
//
//	init.safetensors   parameters before training (PyTorch names and shapes)
//	order.u32          epoch 0's permutation of the 60,000 training indices, uint32 little endian
//	grads1.safetensors d(mean loss)/d(parameter) of step 1
//	final.safetensors  parameters after -steps Adam steps
//	losses.txt         one line per step: step, mean loss (%.9g)
//	config.txt         seed, steps, batch size, learning rate, optimizer, threads
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/kilnml/kiln/data/mnist"
	"github.com/kilnml/kiln/train"
	"github.com/kilnml/kiln/train/safetensors"
)

func main() {
	seed := flag.Uint64("seed", 1, "training seed (initialization and shuffling), as kiln train mnist --seed")
	steps := flag.Int("steps", 20, "training steps to run (at most one epoch)")
	batch := flag.Int("batch-size", 256, "images per step")
	lr := flag.Float64("lr", 1e-3, "learning rate")
	opt := flag.String("optimizer", "adam", "adam or sgd")
	threads := flag.Int("threads", 0, "worker goroutines (0: GOMAXPROCS); results do not depend on it")
	dir := flag.String("dir", "", "output directory (created)")
	mnistDir := flag.String("mnist-dir", "", "directory of the four MNIST idx files (default: the GoMNIST module)")
	flag.Parse()
	if *dir == "" {
		log.Fatal("trainref: -dir is required")
	}
	if err := run(*seed, *steps, *batch, *lr, *opt, *threads, *dir, *mnistDir); err != nil {
		log.Fatal("trainref: ", err)
	}
}

func run(seed uint64, steps, batch int, lr float64, optName string, threads int, dir, mnistDir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	trainSet, _, err := mnist.Load(mnistDir)
	if err != nil {
		return err
	}
	model := train.NewSimpleCNN(seed)
	if err := train.SaveCheckpoint(filepath.Join(dir, "init.safetensors"), model, map[string]string{"seed": fmt.Sprint(seed)}); err != nil {
		return err
	}
	batches := mnist.NewBatches(trainSet, batch, true, seed)
	if steps > batches.NumBatches() {
		return fmt.Errorf("-steps %d is more than one epoch (%d batches)", steps, batches.NumBatches())
	}
	if err := writeOrder(filepath.Join(dir, "order.u32"), batches); err != nil {
		return err
	}
	opt, err := train.NewOptimizer(optName, model.Params(), lr)
	if err != nil {
		return err
	}
	tr := train.NewTrainer(model, opt, batch, threads, 1, 28, 28)
	x, labels := make([]float32, batch*28*28), make([]int, batch)
	batches.Reset(0)
	var losses strings.Builder
	for s := 1; s <= steps; s++ {
		n := batches.Next(x, labels)
		loss, _, err := tr.Step(x[:n*28*28], labels[:n])
		if err != nil {
			return err
		}
		fmt.Fprintf(&losses, "%d %.9g\n", s, loss)
		if s == 1 { // Step leaves this step's gradients in Grad
			if err := saveGrads(filepath.Join(dir, "grads1.safetensors"), model); err != nil {
				return err
			}
		}
	}
	if err := train.SaveCheckpoint(filepath.Join(dir, "final.safetensors"), model, map[string]string{"steps": fmt.Sprint(steps)}); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "losses.txt"), []byte(losses.String()), 0o644); err != nil {
		return err
	}
	cfg := fmt.Sprintf("seed %d\nsteps %d\nbatch_size %d\nlr %g\noptimizer %s\nthreads %d\n", seed, steps, batch, lr, optName, threads)
	return os.WriteFile(filepath.Join(dir, "config.txt"), []byte(cfg), 0o644)
}

// writeOrder records the permutation Batches hands out in epoch 0.
func writeOrder(path string, b *mnist.Batches) error {
	b.Reset(0)
	buf := make([]byte, 0, 4*len(b.Order()))
	for _, i := range b.Order() {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(i))
	}
	return os.WriteFile(path, buf, 0o644)
}

func saveGrads(path string, model *train.Sequential) error {
	f := &safetensors.File{}
	for _, p := range model.Params() {
		shape := make([]int64, len(p.T.Shape))
		for i, d := range p.T.Shape {
			shape[i] = int64(d)
		}
		data := make([]byte, 4*len(p.T.Grad))
		for i, v := range p.T.Grad {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
		f.Tensors = append(f.Tensors, safetensors.Tensor{Name: p.Name, DType: "F32", Shape: shape, Data: data})
	}
	return safetensors.WriteFile(path, f)
}
