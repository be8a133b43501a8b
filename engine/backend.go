package engine

import (
	"sort"
	"sync"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant"
)

// Layer is what the builder asks a backend to implement: one node of the
// optimized graph (possibly a fused kiln.* op), its types at build time and
// its chosen precision.
type Layer struct {
	Node      *ir.Node
	Opset     int64
	In, Out   []*ir.Type   // static types (symbolic dims kept); nil for absent inputs
	Const     []*ir.Tensor // values of constant inputs (weights), nil otherwise
	Precision Precision
	// Quantization of the layer's inputs and outputs where the precision
	// assignment made them quantized (nil entries are float).
	InQuant, OutQuant []*quant.Params
}

// Lowered is a layer turned into a plan step by one tactic.
type Lowered struct {
	Kernel  string       // registered kernel id
	Params  []byte       // kernel parameters
	Weights []*ir.Tensor // handed to the kernel's decoder (already packed)
	// Inputs lists which of the layer's inputs the step reads at run time
	// (indices into Node.Inputs); nil means all of them. Weights that the
	// kernel packed into Weights are left out.
	Inputs []int
}

// Tactic is one way a backend can run a layer.
type Tactic interface {
	Name() string
	Lower(l *Layer) (*Lowered, error)
}

// Backend offers tactics per layer. The builder tries backends in order of
// Priority (higher first) and times the tactics it gets.
type Backend interface {
	Name() string
	Priority() int
	Tactics(l *Layer) []Tactic
}

// ExclusiveBackend is a backend for a device of its own (a GPU). When it
// offers tactics for a layer, the builder times only those: a tactic is
// timed alone, from its own device's memory, so the timing cannot see the
// copies that placing one layer of a device chain on the host adds. (On an
// H200, SimpleCNN FP16 at batch 4096 ran in 12 ms instead of 1 when the
// CPU's MaxPool, Reshape and casts won their timings between GPU layers.)
// Without timing, priority gives the same answer.
type ExclusiveBackend interface {
	Backend
	Exclusive() bool
}

// Exclusive reports whether b is an ExclusiveBackend that says so.
func Exclusive(b Backend) bool {
	e, ok := b.(ExclusiveBackend)
	return ok && e.Exclusive()
}

var (
	bkMu     sync.RWMutex
	backends []Backend
)

// RegisterBackend adds a backend (called from the backend's init).
func RegisterBackend(b Backend) {
	bkMu.Lock()
	defer bkMu.Unlock()
	backends = append(backends, b)
	sort.SliceStable(backends, func(i, j int) bool { return backends[i].Priority() > backends[j].Priority() })
}

// Backends lists registered backends, highest priority first.
func Backends() []Backend {
	bkMu.RLock()
	defer bkMu.RUnlock()
	return append([]Backend(nil), backends...)
}
