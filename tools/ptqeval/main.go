// Command ptqeval measures what post-training quantization costs a
// classifier: the test-set accuracy of the FP32 model and of the same model
// with every Conv/Gemm/MatMul input fake-quantized (QuantizeLinear →
// DequantizeLinear in the reference executor) for each calibrator. It is
// the evidence behind BENCHMARKS.md's calibration table.
//
//	go run ./tools/ptqeval -model ../shared/models/mnist-8-zoo/model.onnx -calib mnist-raw -test mnist-raw:test
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
	"github.com/kilnml/kiln/quant/calib"
	"github.com/kilnml/kiln/quant/qdq"
)

func main() {
	model := flag.String("model", "", "ONNX classifier")
	calData := flag.String("calib", "mnist", "calibration data source")
	testData := flag.String("test", "mnist:test", "labelled test data source")
	batches := flag.Int("calib-batches", 100, "calibration batches")
	batch := flag.Int("batch-size", 64, "batch size")
	limit := flag.Int("test-batches", 0, "limit test batches (0: all)")
	withEngines := flag.Bool("engines", false, "also build FP32/FP16/INT8/FP8 engines and measure their accuracy")
	flag.Parse()
	err := run(*model, *calData, *testData, *batches, *batch, *limit)
	if err == nil && *withEngines {
		var m *ir.Model
		if m, err = onnx.Load(*model); err == nil {
			err = engines(m, *calData, *testData, *batches, *batch, *limit)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ptqeval:", err)
		os.Exit(1)
	}
}

func run(path, calData, testData string, batches, batch, limit int) error {
	m, err := onnx.Load(path)
	if err != nil {
		return err
	}
	sess, err := ops.NewSession(m)
	if err != nil {
		return err
	}
	src, err := datasrc.Open(calData, m.Graph.RealInputs(), datasrc.Options{BatchSize: batch, MaxBatches: batches})
	if err != nil {
		return err
	}
	t0 := time.Now()
	stats, err := calib.Collect(sess, src, calib.CollectOptions{})
	if err != nil {
		return err
	}
	fmt.Printf("model %s: calibrated %d tensors on %d batches of %s in %.1fs\n\n", path, len(stats.Order), stats.Batches, calData, time.Since(t0).Seconds())
	fmt.Println("| model | accuracy (%) | Δ vs FP32 (points) |")
	fmt.Println("|---|---|---|")
	base, err := accuracy(m, testData, batch, limit)
	if err != nil {
		return err
	}
	fmt.Printf("| FP32 | %.2f | |\n", base)
	for _, algo := range calib.Algorithms {
		ranges, err := calib.ComputeRanges(stats, algo, calib.Params{})
		if err != nil {
			return err
		}
		rg := map[string]qdq.Range{}
		for _, r := range ranges {
			rg[r.Name] = qdq.Range{Amax: r.Amax, Min: r.Min, Max: r.Max}
		}
		fq, err := qdq.Insert(m, qdq.Options{Flavor: qdq.TensorRT, Ranges: rg, NoResidualAdds: true})
		if err != nil {
			return err
		}
		acc, err := accuracy(fq, testData, batch, limit)
		if err != nil {
			return err
		}
		fmt.Printf("| INT8 fake-quant, %s | %.2f | %+.2f |\n", algo, acc, acc-base)
	}
	return nil
}

// accuracy runs the labelled source through the model on all cores.
func accuracy(m *ir.Model, spec string, batch, limit int) (float64, error) {
	sess, err := ops.NewSession(m)
	if err != nil {
		return 0, err
	}
	src, err := datasrc.Open(spec, m.Graph.RealInputs(), datasrc.Options{BatchSize: batch, MaxBatches: limit})
	if err != nil {
		return 0, err
	}
	type job struct {
		in     map[string]*ir.Tensor
		labels []int
	}
	jobs := make(chan job, 2)
	var mu sync.Mutex
	right, total := 0, 0
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				out, err := sess.Run(j.in)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					y := out[m.Graph.Outputs[0].Name]
					classes := int(y.Dims[len(y.Dims)-1])
					for i, l := range j.labels {
						row := y.F32()[i*classes : (i+1)*classes]
						best := 0
						for k, v := range row {
							if v > row[best] {
								best = k
							}
						}
						if best == l {
							right++
						}
						total++
					}
				}
				mu.Unlock()
			}
		}()
	}
	for {
		b, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			close(jobs)
			wg.Wait()
			return 0, err
		}
		jobs <- job{b, append([]int(nil), src.Labels()...)}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	if total == 0 {
		return 0, errors.New("no labelled test data")
	}
	return 100 * float64(right) / float64(total), nil
}
