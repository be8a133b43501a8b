package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	_ "github.com/kilnml/kiln/backend/cpu"
	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant/calib"
)

// engines builds FP32, FP16, INT8 (entropy2) and FP8 (entropy2) engines of
// the model with kiln's builder and CPU kernels and reports each one's
// test-set accuracy and build time.
func engines(m *ir.Model, calData, testData string, batches, batch, limit int) error {
	in := m.Graph.RealInputs()[0]
	prof := []builder.Profile(nil)
	if !in.Type.Shape[0].Known() {
		dims, _ := in.Type.Shape[1:].Concrete()
		shape := append([]int64{int64(batch)}, dims...)
		one := append([]int64{1}, dims...)
		prof = []builder.Profile{{in.Name: {Min: one, Opt: shape, Max: shape}}}
	}
	fmt.Println("\n| engine (kiln CPU backend) | accuracy (%) | build (s) |")
	fmt.Println("|---|---|---|")
	for _, c := range []struct {
		name string
		cfg  builder.Config
	}{
		{"FP32", builder.Config{}},
		{"FP16", builder.Config{FP16: true}},
		{"INT8 (entropy2)", builder.Config{INT8: true}},
		{"FP8 E4M3 (entropy2)", builder.Config{FP8: true}},
	} {
		cfg := c.cfg
		cfg.Profiles = prof
		if cfg.INT8 || cfg.FP8 {
			src, err := datasrc.Open(calData, m.Graph.RealInputs(), datasrc.Options{BatchSize: batch, MaxBatches: batches})
			if err != nil {
				return err
			}
			cfg.Calibration = &builder.Calibration{Source: src, Algorithm: calib.Entropy2}
		}
		t0 := time.Now()
		plan, _, err := builder.Build(m, nil, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		took := time.Since(t0).Seconds()
		e, err := engine.NewEngine(plan)
		if err != nil {
			return err
		}
		ctx := e.NewContext()
		test, err := datasrc.Open(testData, m.Graph.RealInputs(), datasrc.Options{BatchSize: batch, MaxBatches: limit})
		if err != nil {
			return err
		}
		right, total := 0, 0
		for {
			b, err := test.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			out, err := ctx.Run(b)
			if err != nil {
				return err
			}
			y := out[m.Graph.Outputs[0].Name]
			classes := int(y.Dims[len(y.Dims)-1])
			for i, l := range test.Labels() {
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
		fmt.Printf("| %s | %.2f | %.1f |\n", c.name, 100*float64(right)/float64(total), took)
	}
	return nil
}
