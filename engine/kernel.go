package engine

import (
	"fmt"
	"sort"
	"sync"

	"github.com/kilnml/kiln/ir"
)

// Kernel is one executable step. Implementations must be safe for
// concurrent Run calls from different contexts (keep per-run state in the
// Exec scratch or on the stack).
type Kernel interface {
	// Shapes returns output dims for the given inputs. in[i].Dims is always
	// set; in[i].Data is non-nil only for weights and the outputs of shape
	// steps, whose values kernels may read to compute shapes (Reshape,
	// Expand, Slice with runtime starts, ...).
	Shapes(in []*ir.Tensor) ([][]int64, error)
	// Run computes the outputs into the preallocated out tensors (dims
	// already set by Shapes).
	Run(x *Exec, in, out []*ir.Tensor) error
}

// Exec is what a kernel gets at run time besides its tensors.
type Exec struct {
	Threads int // worker goroutines the kernel may use (>= 1)
	// Scratch is per-context memory a kernel may use during Run; its
	// contents do not survive between steps.
	Scratch func(n int) []byte
	// Execution counts the context's Execute calls (1 for the first; 0
	// when the kernel runs outside a context, e.g. for tactic timing) and
	// Layout its shape layouts (it changes when the bound input shapes or
	// the profile change the values' dims or arena views). Device kernels
	// use them to recognize a repeated run of the same steps on the same
	// memory (CUDA graphs).
	Execution, Layout uint64
}

// Decoder recreates a kernel from its encoded parameters and its weights.
type Decoder func(params []byte, weights []*ir.Tensor) (Kernel, error)

var (
	decMu    sync.RWMutex
	decoders = map[string]Decoder{}
)

// RegisterKernel makes a kernel id loadable from plans. Backends call it in
// init; a duplicate id panics.
func RegisterKernel(id string, d Decoder) {
	decMu.Lock()
	defer decMu.Unlock()
	if _, dup := decoders[id]; dup {
		panic("engine: duplicate kernel id " + id)
	}
	decoders[id] = d
}

// LookupKernel returns the decoder of a kernel id.
func LookupKernel(id string) (Decoder, error) {
	decMu.RLock()
	defer decMu.RUnlock()
	d, ok := decoders[id]
	if !ok {
		return nil, fmt.Errorf("kernel %q is not available in this build of kiln", id)
	}
	return d, nil
}

// KernelIDs lists registered kernel ids.
func KernelIDs() []string {
	decMu.RLock()
	defer decMu.RUnlock()
	var ids []string
	for id := range decoders {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
