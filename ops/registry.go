// Package ops is kiln's reference executor: one plain, obviously-correct Go
// kernel per ONNX operator, with shape and type inference for each. It is the
// specification every fast kernel, pass and backend is tested against, so
// clarity beats speed here.
//
// Op families live in subpackages (ops/arith, ops/nn, ops/layout, ops/qops)
// that register themselves in init; import ops/all to get every op. This
// package holds the registry, the helpers kernels share (broadcasting,
// attributes), the graph executor and the inference driver.
package ops

import (
	"fmt"
	"sort"
	"sync"

	"github.com/kilnml/kiln/ir"
)

// Kernel computes a node's outputs from its inputs. in[i] is nil for an
// absent optional input. It returns one tensor per node output (nil for an
// optional output nobody asked for is allowed).
type Kernel func(c *Ctx, in []*ir.Tensor) ([]*ir.Tensor, error)

// InferFunc sets c.Out (and optionally c.OutValue) from the input types,
// attributes and whatever input values are known.
type InferFunc func(c *InferCtx) error

// Op is one registered operator implementation.
type Op struct {
	Type   string
	Domain string // "" is the default ONNX domain (ai.onnx)
	// MinOpset and MaxOpset bound the versions of Domain this implementation
	// follows (0 = unbounded). kiln targets opsets 7 to 25.
	MinOpset, MaxOpset int64
	Run                Kernel
	Infer              InferFunc
}

var (
	regMu    sync.RWMutex
	registry = map[string]*Op{}
)

func key(domain, opType string) string {
	if domain == "ai.onnx" {
		domain = ""
	}
	return domain + "::" + opType
}

// Register adds an op; it panics on a duplicate (a programming error).
func Register(op *Op) {
	regMu.Lock()
	defer regMu.Unlock()
	k := key(op.Domain, op.Type)
	if _, dup := registry[k]; dup {
		panic("ops: duplicate registration of " + k)
	}
	if op.Run == nil || op.Infer == nil {
		panic("ops: " + k + " registered without a kernel or an inference function")
	}
	registry[k] = op
}

// UnsupportedError says why one node cannot run.
type UnsupportedError struct {
	Domain, OpType string
	Opset          int64
	Reason         string
}

func (e *UnsupportedError) Error() string {
	d := e.Domain
	if d == "" {
		d = "ai.onnx"
	}
	return fmt.Sprintf("op %s (domain %s, opset %d) %s", e.OpType, d, e.Opset, e.Reason)
}

// Lookup finds the implementation of an op at an opset version.
func Lookup(domain, opType string, opset int64) (*Op, error) {
	regMu.RLock()
	op := registry[key(domain, opType)]
	regMu.RUnlock()
	if op == nil {
		return nil, &UnsupportedError{domain, opType, opset, "is not supported"}
	}
	if (op.MinOpset > 0 && opset < op.MinOpset) || (op.MaxOpset > 0 && opset > op.MaxOpset) {
		return nil, &UnsupportedError{domain, opType, opset,
			fmt.Sprintf("is supported only for opsets %d to %d", op.MinOpset, op.MaxOpset)}
	}
	return op, nil
}

// Registered lists all ops, sorted by domain and type.
func Registered() []*Op {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]*Op, 0, len(registry))
	for _, op := range registry {
		out = append(out, op)
	}
	sort.Slice(out, func(i, j int) bool {
		return key(out[i].Domain, out[i].Type) < key(out[j].Domain, out[j].Type)
	})
	return out
}
