package cudabackend

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
)

// The lean timeline, programmatic dependent launches and CUDA graphs with
// timeline nodes change neither results nor what ReadTiming counts:
// SimpleCNN's outputs are bit-identical (where eager launches reproduce
// themselves) under per-step events, the lean timeline, the lean timeline
// with PDL, and graph replays with and without PDL, with and without
// pinned staging, and each mode reports every step and some H2D, compute
// and D2H time.
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
		if !cuda.ExternalRecordSupported() {
			t.Log("this driver cannot record events in graphs: graph replays count as compute")
		}
		var want []*ir.Tensor
		var steps int64
		exact := true
		for _, pinned := range []bool{true, false} {
			ioModes(t, false, pinned)
			for _, m := range []struct {
				name                string
				events, pdl, graphs bool
			}{{"per-step events", true, false, false}, {"lean", false, false, false}, {"lean+pdl", false, true, false},
				{"graph", false, false, true}, {"graph+pdl", false, true, true}} {
				if m.graphs && !pinned {
					continue // graphs need pinned staging
				}
				SetStepEvents(m.events)
				SetPDL(m.pdl)
				SetGraphs(m.graphs)
				ctx := e.NewContext()
				reps := ReadGraphStats().Replays
				runBytes(t, e, ctx, "input", x) // warm-up (graphs: eager)
				// graphs: the capture, then replays. A capture may come a run
				// or two later (it waits while a dropped context's release
				// runs; memory that moved makes it stale): run until one replays.
				for k := 0; m.graphs && k < 6 && (k == 0 || ReadGraphStats().Replays == reps); k++ {
					runBytes(t, e, ctx, "input", x)
				}
				gs := ReadGraphStats()
				ResetTiming()
				got := runBytes(t, e, ctx, "input", x)
				tm := ReadTiming()
				if gs2 := ReadGraphStats(); m.graphs && (gs2.Replays == gs.Replays || gs2.Failures != gs.Failures) {
					t.Errorf("%s: no graph replay (%d fallbacks, last %q)", m.name, gs2.Failures-gs.Failures, gs2.LastFailure)
				}
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
