// Package cpu is kiln's fast CPU backend (priority 10, above the reference
// fallback): FP32 convolutions (im2col+GEMM with weights packed at build
// time, 1×1 stride-1 convs packing the input itself without im2col, direct
// depthwise), Gemm/MatMul with prepacked weights
// or two activations, their fused epilogues (bias, residual, activation),
// the same convolutions and dense layers over float16 storage;
// INT8 and FP8 kiln.QConv/QGemm/QMatMul bit-exact with ops/kilnq; reformats
// (QuantizeLinear, DequantizeLinear, Cast fp32↔fp16) bit-exact with
// ops/qops; MaxPool and Relu on int8 codes. Kernels are pure Go over
// kernels/f32, kernels/i8 and kernels/pack, threaded by kernels/parallel.
// Import it for its side effect of registering the backend and kernels.
//
// Exactness: INT8 layers are bit-exact with ops/kilnq (integer sums are
// exact; the epilogue performs the reference's float32 operations in its
// order). FP8 (E4M3, or E5M2 activations) layers decode codes through a table and accumulate in
// float32 in the GEMM's order where the reference sums in float64: fp32
// outputs agree within rel 1e-5, E4M3 outputs within one code (adjacent
// codes where the float32 and float64 sums straddle a rounding boundary).
// FP32 layers accumulate in float32 and match the reference within rel
// 1e-5; FP16 convolutions and dense layers (float16 storage) widen their
// inputs to float32, compute as FP32 and round once at the store, where
// the reference rounds its float64 result (twice for fused ops): within
// two float16 ulps. Reformats, pooling, elementwise ops and Softmax are
// bit-exact.
// Results are identical for every thread count: each output element is
// computed by one worker with a fixed summation order.
package cpu

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/i8"
	"github.com/kilnml/kiln/kernels/pack"
	"github.com/kilnml/kiln/kernels/parallel"
	"github.com/kilnml/kiln/ops/kilnq"
)

// Backend offers the fast tactics.
type Backend struct{}

func (Backend) Name() string  { return "cpu" }
func (Backend) Priority() int { return 10 }

// Tactics lists the ways this backend can run a layer, best guess first
// (the builder times them when several compete). A tactic may still
// decline in Lower (e.g. a non-constant weight), falling back to ref.
func (Backend) Tactics(l *engine.Layer) []engine.Tactic {
	if disabled {
		return nil
	}
	n := l.Node
	switch {
	case n.Domain == "" && n.OpType == "Conv", n.Domain == "kiln" && n.OpType == "Conv":
		switch {
		case l.Precision == engine.FP32:
			return convTactics(l, "f32")
		case l.Precision == engine.FP16 && inDType(l, 0) == ir.Float16:
			return convTactics(l, "f16")
		}
		return nil
	case n.Domain == "kiln" && n.OpType == "QConv":
		return convTactics(l, quantPrec(l))
	case n.Domain == "" && (n.OpType == "Gemm" || n.OpType == "MatMul"),
		n.Domain == "kiln" && (n.OpType == "Gemm" || n.OpType == "MatMul"):
		if l.Precision == engine.FP16 && inDType(l, 0) == ir.Float16 && isConst(l, 1) {
			return []engine.Tactic{gemmTactic{prec: "f16"}}
		}
		if l.Precision != engine.FP32 {
			return nil
		}
		if n.OpType == "MatMul" && !isConst(l, 1) {
			return []engine.Tactic{matmulTactic{}}
		}
		return []engine.Tactic{gemmTactic{prec: "f32"}}
	case n.Domain == "kiln" && (n.OpType == "QGemm" || n.OpType == "QMatMul"):
		return []engine.Tactic{gemmTactic{prec: quantPrec(l)}}
	case n.Domain == "kiln" && n.OpType == "QAdd":
		return []engine.Tactic{qaddTactic{}}
	case n.Domain == "" && (n.OpType == "QuantizeLinear" || n.OpType == "DequantizeLinear" || n.OpType == "Cast"):
		return []engine.Tactic{reformatTactic{}}
	case n.Domain == "" && (n.OpType == "MaxPool" || n.OpType == "AveragePool"):
		if n.OpType == "MaxPool" && isFP8(inDType(l, 0)) { // simd_fp8_pool.go (Go twins without AVX-512)
			return []engine.Tactic{simdF8PoolTactic{}}
		}
		if n.OpType == "MaxPool" && inDType(l, 0) == ir.Float16 { // simd_fp16.go around the float32 pool
			return []engine.Tactic{simdF16Tactic{inner: maxPoolTactic{}}}
		}
		return []engine.Tactic{maxPoolTactic{}}
	case n.Domain == "" && n.OpType == "Relu":
		return []engine.Tactic{reluTactic{}}
	case n.Domain == "" && (n.OpType == "Add" || n.OpType == "Sub" || n.OpType == "Mul" || n.OpType == "Div" ||
		n.OpType == "Softmax" || n.OpType == "GlobalAveragePool" || n.OpType == "Sum" && len(n.Inputs) == 2):
		if l.Precision == engine.FP16 && halfLayer(l) { // simd_fp16.go: float32 math between F16C conversions
			return []engine.Tactic{simdF16Tactic{inner: ewTactic{}}}
		}
		if l.Precision != engine.FP32 {
			return nil
		}
		return []engine.Tactic{ewTactic{}}
	case n.Domain == "" && n.OpType == "Transpose":
		return []engine.Tactic{transposeTactic{}}
	case n.Domain == "" && (n.OpType == "Reshape" || n.OpType == "Flatten" || n.OpType == "Squeeze" ||
		n.OpType == "Unsqueeze" || n.OpType == "Identity"):
		return []engine.Tactic{copyTactic{}}
	}
	return nil
}

func init() { engine.RegisterBackend(Backend{}) }

// disabled turns the backend off (tests build reference engines with it).
var disabled bool

// quantPrec is "i8" or "f8" (E4M3 or E5M2 codes) from the layer's
// activation type.
func quantPrec(l *engine.Layer) string {
	if _, ok := kilnq.FP8Format(inDType(l, 0)); ok {
		return "f8"
	}
	return "i8"
}

func isConst(l *engine.Layer, i int) bool { return i < len(l.Const) && l.Const[i] != nil }

func hasInput(n *ir.Node, i int) bool { return i < len(n.Inputs) && n.Inputs[i] != "" }

func inDType(l *engine.Layer, i int) ir.DType {
	if i < len(l.In) && l.In[i] != nil {
		return l.In[i].DType
	}
	return ir.Undefined
}

// register makes a kernel id loadable: params are JSON of P, the decoder
// builds the kernel from them and the packed weights.
func register[P any](id string, build func(p *P, w []*ir.Tensor) (engine.Kernel, error)) {
	engine.RegisterKernel(id, func(data []byte, w []*ir.Tensor) (engine.Kernel, error) {
		p := new(P)
		if err := json.Unmarshal(data, p); err != nil {
			return nil, fmt.Errorf("%s: bad parameters: %w", id, err)
		}
		return build(p, w)
	})
}

func lowered(id string, p any, w []*ir.Tensor, inputs []int) (*engine.Lowered, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	// Decode once now so that a plan never holds a kernel its loader rejects.
	dec, err := engine.LookupKernel(id)
	if err != nil {
		return nil, err
	}
	if _, err := dec(data, w); err != nil {
		return nil, err
	}
	return &engine.Lowered{Kernel: id, Params: data, Weights: w, Inputs: inputs}, nil
}

// slots is per-worker scratch carved from the context's scratch memory
// (64-byte aligned slots of equal size).
type slots struct {
	buf  []byte
	slot int
}

func newSlots(x *engine.Exec, workers, bytes int) slots {
	slot := (bytes + 63) &^ 63
	return slots{buf: x.Scratch(slot * workers), slot: slot}
}

// slotAs views worker w's slot as n elements of T.
func slotAs[T any](s slots, w, n int) []T {
	return bytesAs[T](s.buf[w*s.slot:(w+1)*s.slot], n)
}

// i8SlotBytes is the per-worker scratch of an int8 GEMM over cols
// columns of depth k: the lane pairs (8-byte aligned, first) and packed B.
func i8SlotBytes(k, cols int) int {
	return 8*i8.PairsSize(k) + 2*pack.BSize(k, cols, i8.NR)
}

func i8Slot(s slots, w, k, cols int) ([]int16, []int64) {
	buf := s.buf[w*s.slot : (w+1)*s.slot]
	np := 8 * i8.PairsSize(k)
	return bytesAs[int16](buf[np:], pack.BSize(k, cols, i8.NR)), bytesAs[int64](buf, i8.PairsSize(k))
}

// newSlotsPrefix carves, from one Scratch call, a prefix of prefixBytes
// (shared: converted inputs) followed by per-worker slots.
func newSlotsPrefix(x *engine.Exec, prefixBytes, workers, bytes int) ([]byte, slots) {
	slot := (bytes + 63) &^ 63
	pre := (prefixBytes + 63) &^ 63
	buf := x.Scratch(pre + slot*workers)
	return buf[:prefixBytes], slots{buf: buf[pre:], slot: slot}
}

// halfToFloat widens float16 values.
func halfToFloat(dst []float32, src []uint16) {
	for i, h := range src {
		dst[i] = floatx.F16ToF32(h)
	}
}

// floats returns a float32 or float16 tensor's values as float32.
func floats(t *ir.Tensor) []float32 {
	if t.DType == ir.Float16 {
		out := make([]float32, len(t.U16()))
		halfToFloat(out, t.U16())
		return out
	}
	return append([]float32(nil), t.F32()...)
}

// runPool recycles per-run task state so Run allocates nothing.
type runPool[T any] struct{ p sync.Pool }

func (r *runPool[T]) get() *T {
	if v := r.p.Get(); v != nil {
		return v.(*T)
	}
	return new(T)
}

func (r *runPool[T]) put(v *T) { r.p.Put(v) }

// run spreads a task's items over the pool.
func run(x *engine.Exec, n int, t parallel.Task) { parallel.Run(x.Threads, n, t) }
