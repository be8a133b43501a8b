package cudabackend

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
)

// ioModes sets graphs and pinned staging for a test and restores them.
func ioModes(t *testing.T, graphs, pinned bool) {
	g, p := Graphs(), Pinned()
	SetGraphs(graphs)
	SetPinned(pinned)
	t.Cleanup(func() { SetGraphs(g); SetPinned(p) })
}

// runBytes executes ctx on x and returns a copy of every output.
func runBytes(t *testing.T, e *engine.Engine, ctx *engine.Context, input string, x *ir.Tensor) []*ir.Tensor {
	t.Helper()
	if err := ctx.SetInput(input, x); err != nil {
		t.Fatal(err)
	}
	if err := ctx.Execute(); err != nil {
		t.Fatal(err)
	}
	var outs []*ir.Tensor
	for _, b := range e.Outputs() {
		o, err := ctx.Output(b.Name)
		if err != nil {
			t.Fatal(err)
		}
		c := *o
		c.Dims = append([]int64(nil), o.Dims...)
		c.Data = append([]byte(nil), o.Data...)
		outs = append(outs, &c)
	}
	return outs
}

// nondetBound is the NMSE allowed between two runs when the eager launches
// themselves are not bit-reproducible (a cuBLASLt algorithm that reduces
// with atomics); otherwise every comparison is bit-exact.
const nondetBound = 1e-10

// pinnedCopy returns a copy of x in HostAlloc'd memory, freed when the
// test ends.
func pinnedCopy(t *testing.T, x *ir.Tensor) *ir.Tensor {
	t.Helper()
	p, err := NewPinnedTensor(x.DType, x.Dims)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { HostFree(p.Data) })
	copy(p.Data, x.Data)
	return p
}

func sameBytes(a, b []*ir.Tensor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func closeEnough(a, b []*ir.Tensor, exact bool) bool {
	if exact || len(a) != len(b) {
		return sameBytes(a, b)
	}
	for i := range a {
		if e := nmse(a[i], b[i]); !(e <= nondetBound) {
			return false
		}
	}
	return true
}

// CUDA graph replay computes bit for bit what eager launches compute, for
// inputs that change between runs (data and buffer), across a change of
// batch (graphs captured again), and pinned staging and pinned caller
// buffers do not change results either.
func TestGraphReplayMatchesEager(t *testing.T) {
	needGPU(t)
	type model struct {
		name  string
		m     *ir.Model
		input string
		cfg   builder.Config
		big   int64 // batch; the test also runs big/2
		rest  []int64
	}
	var models []model
	sc, err := onnx.Load(filepath.Join(sharedDir(t), "models", "bench", "simplecnn.fp32.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	models = append(models, model{"simplecnn fp32", sc, "input", builder.Config{}, 64, []int64{1, 28, 28}},
		model{"simplecnn fp16", sc, "input", builder.Config{FP16: true}, 64, []int64{1, 28, 28}})
	if !testing.Short() {
		rn, in := benchModel(t, "resnet50")
		models = append(models, model{"resnet50 fp16", rn, in, builder.Config{FP16: true}, 4, []int64{3, 224, 224}})
	}
	for _, c := range models {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			small := c.big / 2
			cfg.Profiles = []builder.Profile{{c.input: {Min: append([]int64{1}, c.rest...), Opt: append([]int64{small}, c.rest...), Max: append([]int64{c.big}, c.rest...)}}}
			e := buildOn(t, true, c.m, cfg)
			rng := rand.New(rand.NewPCG(7, 8))
			var xs []*ir.Tensor
			for _, b := range []int64{c.big, c.big, small, c.big} {
				xs = append(xs, randTensor(rng, ir.Float32, append([]int64{b}, c.rest...)))
			}
			// the reference: eager launches from pageable memory
			ioModes(t, false, false)
			ref := e.NewContext()
			var want [][]*ir.Tensor
			for _, x := range xs {
				want = append(want, runBytes(t, e, ref, c.input, x))
			}
			exact := sameBytes(runBytes(t, e, ref, c.input, xs[0]), want[0])
			if !exact {
				t.Logf("%s: eager launches are not bit-reproducible here; comparing with NMSE <= %g", c.name, nondetBound)
			}
			// graphs: per shape a warm-up run, a capture run, replays
			SetGraphs(true)
			SetPinned(true)
			before := ReadGraphStats()
			ctx := e.NewContext()
			seq := []int{0, 1, 0, 1, 0, 2, 2, 2, 2, 3, 3, 3, 1}
			for k, i := range seq {
				x := xs[i]
				if k%2 == 1 { // a different buffer with the same data
					y := *x
					y.Data = append([]byte(nil), x.Data...)
					x = &y
				}
				if got := runBytes(t, e, ctx, c.input, x); !closeEnough(got, want[i], exact) {
					t.Fatalf("run %d (input %d, batch %d): graph mode differs from eager", k, i, x.Dims[0])
				}
			}
			after := ReadGraphStats()
			t.Logf("%s: %d captures, %d replays, %d fallbacks (last: %q), %d releases deferred", c.name, after.Captures-before.Captures, after.Replays-before.Replays, after.Failures-before.Failures, after.LastFailure, after.DeferredReleases-before.DeferredReleases)
			if after.Failures != before.Failures {
				t.Errorf("a segment fell back to eager launches: %s", after.LastFailure)
			}
			if after.Replays-before.Replays < 6 {
				t.Errorf("%d graph replays, want at least 6", after.Replays-before.Replays)
			}
			// pinned staging without graphs, and a caller's pinned input
			SetGraphs(false)
			px := pinnedCopy(t, xs[0])
			if !isPinned(px.Data) || isPinned(xs[0].Data) {
				t.Fatal("isPinned does not tell HostAlloc'd memory from Go memory")
			}
			eager := e.NewContext()
			for k, x := range []*ir.Tensor{xs[0], px, xs[2], px} {
				i := []int{0, 0, 2, 0}[k]
				if got := runBytes(t, e, eager, c.input, x); !closeEnough(got, want[i], exact) {
					t.Fatalf("pinned staging run %d differs from pageable copies", k)
				}
			}
			// graphs with caller-pinned inputs: a segment's first step
			// copies them ahead of the graph from the buffer bound at that
			// replay (earlyCopy), whatever it holds, pinned or not
			SetGraphs(true)
			py := pinnedCopy(t, xs[1])
			before = ReadGraphStats()
			gctx := e.NewContext()
			for k, run := range []struct {
				x    *ir.Tensor
				fill int // copy xs[fill] into x first (-1: leave it)
				want int
			}{{px, 0, 0}, {px, -1, 0}, {px, -1, 0}, {px, 1, 1}, {py, -1, 1}, {xs[0], -1, 0}, {px, 0, 0}, {py, -1, 1}} {
				if run.fill >= 0 {
					copy(run.x.Data, xs[run.fill].Data)
				}
				if got := runBytes(t, e, gctx, c.input, run.x); !closeEnough(got, want[run.want], exact) {
					t.Fatalf("graph run %d with caller-pinned inputs differs from eager", k)
				}
			}
			after = ReadGraphStats()
			t.Logf("%s, caller-pinned inputs: %d replays, %d copies queued ahead of a graph", c.name, after.Replays-before.Replays, after.EarlyCopies-before.EarlyCopies)
			if after.Failures != before.Failures {
				t.Errorf("a segment fell back to eager launches: %s", after.LastFailure)
			}
			if after.EarlyCopies-before.EarlyCopies < 5 {
				t.Errorf("%d early copies in 6 replays with the input bound first to a caller's pinned buffer, want at least 5", after.EarlyCopies-before.EarlyCopies)
			}
		})
	}
}

// Without a GPU: copyPar copies every byte for sizes around its chunking,
// and isPinned looks up registered ranges.
func TestCopyParAndPinnedRanges(t *testing.T) {
	for _, n := range []int{0, 1, copyChunk - 1, copyChunk, 2*copyChunk + 1, 5*copyChunk + 4095, 9*copyChunk + 7} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i*31 + i>>12)
		}
		dst := make([]byte, n)
		copyPar(dst, src)
		if !bytes.Equal(dst, src) {
			t.Fatalf("copyPar of %d bytes differs", n)
		}
	}
	buf := make([]byte, 3*4096)
	base := uintptr(unsafe.Pointer(&buf[0]))
	pinMu.Lock()
	saved := pinned
	pinned = []pinRange{{base + 4096, base + 2*4096}}
	pinSize.Add(4096)
	pinMu.Unlock()
	defer func() {
		pinMu.Lock()
		pinned = saved
		pinSize.Add(-4096)
		pinMu.Unlock()
	}()
	for _, c := range []struct {
		lo, hi int
		want   bool
	}{{0, 4096, false}, {4096, 8192, true}, {4100, 4200, true}, {4095, 4200, false}, {8000, 8193, false}, {8192, 8200, false}} {
		if got := isPinned(buf[c.lo:c.hi]); got != c.want {
			t.Errorf("isPinned([%d:%d]) = %v, want %v", c.lo, c.hi, got, c.want)
		}
	}
	if isPinned(nil) {
		t.Error("isPinned(nil)")
	}
}
