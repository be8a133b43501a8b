package cudabackend

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
)

// The lean timeline and programmatic dependent launches change neither
// results nor what ReadTiming counts: SimpleCNN's outputs are bit-identical
// under per-step events, the lean timeline, and the lean timeline with
// PDL, with and without pinned staging, and each mode reports every step
// and some H2D, compute and D2H time.
func TestLeanTimelineAndPDL(t *testing.T) {
	needGPU(t)
	sc, err := onnx.Load(filepath.Join(sharedDir(t), "models", "bench", "simplecnn.fp32.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fp16 := range []bool{false, true} {
		cfg := builder.Config{FP16: fp16}
		cfg.Profiles = []builder.Profile{{"input": {Min: []int64{1, 1, 28, 28}, Opt: []int64{64, 1, 28, 28}, Max: []int64{64, 1, 28, 28}}}}
		e := buildOn(t, true, sc, cfg)
		x := randTensor(rand.New(rand.NewPCG(3, 4)), ir.Float32, []int64{64, 1, 28, 28})
		wasEv, wasPDL := StepEvents(), PDL()
		t.Cleanup(func() { SetStepEvents(wasEv); SetPDL(wasPDL) })
		var want []*ir.Tensor
		var steps int64
		exact := true
		for _, pinned := range []bool{true, false} {
			ioModes(t, false, pinned)
			for _, m := range []struct {
				name        string
				events, pdl bool
			}{{"per-step events", true, false}, {"lean", false, false}, {"lean+pdl", false, true}} {
				SetStepEvents(m.events)
				SetPDL(m.pdl)
				ctx := e.NewContext()
				runBytes(t, e, ctx, "input", x) // warm-up
				ResetTiming()
				got := runBytes(t, e, ctx, "input", x)
				tm := ReadTiming()
				what := m.name
				if fp16 {
					what += ", fp16"
				}
				if !pinned {
					what += ", pageable"
				}
				if want == nil {
					want, steps = got, tm.Steps
					exact = sameBytes(runBytes(t, e, ctx, "input", x), want)
					if !exact {
						t.Logf("%s: eager launches are not bit-reproducible here; comparing with NMSE <= %g", what, nondetBound)
					}
				} else if !closeEnough(got, want, exact) {
					t.Errorf("%s: outputs differ from the first mode's", what)
				}
				if tm.Steps != steps || tm.Steps == 0 {
					t.Errorf("%s: %d steps counted, want %d", what, tm.Steps, steps)
				}
				if tm.H2D <= 0 || tm.Compute <= 0 || tm.D2H <= 0 {
					t.Errorf("%s: timing %v: every part should be positive", what, tm)
				}
				t.Logf("%s: %v", what, tm)
			}
		}
	}
}
