package cudabackend

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/onnx"
)

// Which layers of the benchmark models the CUDA backend takes (checked
// without a GPU: lowering needs none).
func TestPlacement(t *testing.T) {
	offerWithoutDevice = true
	defer func() { offerWithoutDevice = false }()
	dir := sharedDir(t)
	shape := []int64{256, 1, 28, 28}
	prof := []builder.Profile{{"input": {Min: shape, Opt: shape, Max: shape}}}
	for _, c := range []struct {
		file string
		cfg  builder.Config
		min  int // steps that must be on the GPU
	}{
		{"bench/simplecnn.fp32.onnx", builder.Config{Profiles: prof}, 6},
		{"bench/simplecnn.fp32.onnx", builder.Config{Profiles: prof, FP16: true}, 6},
		{"bench/simplecnn.int8.qdq.onnx", builder.Config{Profiles: prof, INT8: true}, 8},
		{"mnist-8-zoo/model.onnx", builder.Config{}, 4},
	} {
		m, err := onnx.Load(filepath.Join(dir, "models", c.file))
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := builder.Build(m, nil, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		var off []string
		on := 0
		for _, s := range p.Steps {
			if s.ShapeStep {
				continue
			}
			if strings.HasPrefix(s.Kernel, "cuda.") {
				on++
			} else {
				off = append(off, s.Name+" ("+s.Kernel+", "+s.Precision+")")
			}
		}
		t.Logf("%s %+v: %d on the GPU; elsewhere: %s", c.file, c.cfg.FP16 || c.cfg.INT8, on, strings.Join(off, "; "))
		for _, o := range off {
			if !strings.Contains(o, "Reshape") && !strings.Contains(o, "reshape") && !strings.Contains(o, "Flatten") {
				t.Errorf("%s: %s is not on the GPU", c.file, o)
			}
		}
		if on < c.min {
			t.Errorf("%s: only %d steps on the GPU", c.file, on)
		}
	}
}
