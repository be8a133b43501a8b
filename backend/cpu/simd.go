package cpu

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/f32"
	"github.com/kilnml/kiln/ops/kiln"
)

// simdBackend offers the SIMD tactics of kernels/avx next to the portable
// ones (same name, one priority lower so that deterministic builds keep
// the portable kernels); the builder times both and keeps the faster, so
// these tactics only ever add speed. They are offered only where the CPU
// has the features; a plan built with them loads anywhere (the kernels
// fall back to their generic twins, same packed layout, with a
// PortabilityWarning).
type simdBackend struct{}

func (simdBackend) Name() string  { return "cpu" }
func (simdBackend) Priority() int { return 9 }

func init() { engine.RegisterBackend(simdBackend{}) }

// simdAVX512 says whether kernels/avx runs its AVX-512 micro-kernel here.
func simdAVX512() bool { return slices.Contains(avx.Variants(), avx.VariantAVX512) }

// simdAvailable says whether kernels/avx has a SIMD micro-kernel here
// (AVX-512, or AVX2+FMA): the SIMD tactics are offered and timed against
// the portable ones; routines with only an AVX-512 form run their Go twins
// on AVX2 (same results).
func simdAvailable() bool { return len(avx.Variants()) > 1 }

func (simdBackend) Tactics(l *engine.Layer) []engine.Tactic {
	if disabled || !simdAvailable() {
		return nil
	}
	n := l.Node
	pooled := n.Attr(kiln.PoolAttr) != nil // fused 2×2 pool: FP32 and INT8 GEMM convs only (convpool.go)
	if pooled && l.Precision != engine.FP32 && l.Precision != engine.INT8 {
		return nil
	}
	if ts, ok := simdF8Tactics(l); ok { // fp8 layers and pools: simd_fp8*.go
		return ts
	}
	if ts, ok := simdF16Tactics(l); ok { // fp16 layers on the FP32 kernels: simd_fp16.go
		return ts
	}
	switch {
	case n.Domain == "" && n.OpType == "Conv", n.Domain == "kiln" && n.OpType == "Conv":
		if l.Precision != engine.FP32 || !isConst(l, 1) || len(l.Const[1].Dims) != 4 {
			return nil
		}
		var ts []engine.Tactic
		if !pointwiseDirect(l, pooled) {
			ts = append(ts, simdConvTactic{variant: simdIm2col})
		}
		if d := l.Const[1].Dims; d[1] == 1 && !pooled {
			ts = append(ts, simdDWTactic{})
		}
		if d := l.Const[1].Dims; d[2] == 1 && d[3] == 1 {
			ts = append(ts, simdConvTactic{variant: simdDirect})
		}
		return ts
	case n.Domain == "" && (n.OpType == "Gemm" || n.OpType == "MatMul"),
		n.Domain == "kiln" && (n.OpType == "Gemm" || n.OpType == "MatMul"):
		if l.Precision != engine.FP32 {
			return nil
		}
		if !isConst(l, 1) {
			if n.Domain == "" && n.OpType == "MatMul" {
				return []engine.Tactic{simdMatMulTactic{}}
			}
			return nil
		}
		return []engine.Tactic{simdGemmTactic{}}
	case n.Domain == "kiln" && n.OpType == "QConv":
		if len(avx.QVariants()) < 2 || !isConst(l, 1) || len(l.Const[1].Dims) != 4 || quantPrec(l) != "i8" {
			return nil
		}
		ts := []engine.Tactic{simdQConvTactic{}}
		// depthwise: on AVX2 only 3×3 kernels, whose code-output planes run
		// the AVX2 row kernels (avx.DepthwiseQ3x3); other shapes would run
		// the FP32 row kernel's Go twin there
		if d := l.Const[1].Dims; d[1] == 1 && !pooled && (simdAVX512() || d[2] == 3 && d[3] == 3) {
			ts = append(ts, simdQDWTactic{})
		}
		return ts
	case n.Domain == "kiln" && (n.OpType == "QGemm" || n.OpType == "QMatMul"):
		if len(avx.QVariants()) < 2 || !isConst(l, 1) || quantPrec(l) != "i8" {
			return nil
		}
		return []engine.Tactic{simdQGemmTactic{}}
	case n.Domain == "" && n.OpType == "MaxPool":
		return []engine.Tactic{simdPoolTactic{}, simdMaxPoolTactic{}}
	}
	return nil
}

// simdEpi maps a fused activation to the micro-kernel's clamp, or to a Go
// function applied to the stored tile (after the bias and residual adds,
// exactly as kernels/f32's epilogue).
func simdEpi(a kiln.Activation) avx.Epi {
	switch a.Kind {
	case "":
		return avx.Epi{}
	case "Relu":
		return avx.Epi{Clamp: true, Lo: 0, Hi: float32(math.Inf(1))}
	case "Clip":
		return avx.Epi{Clamp: true, Lo: a.Alpha, Hi: a.Beta}
	case "Gelu": // f32.Act32's GELU (kiln.Gelu32), a row at a time
		return avx.Epi{Act: kiln.Gelu32, ActRow: f32.GeluRow}
	}
	return avx.Epi{Act: func(y float32) float32 { return f32.Act32(&a, y) }}
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// simdThreads is the worker count for a layer of macs multiply-adds: a
// small layer runs on the calling goroutine alone, because waking workers
// costs more than the split saves.
func simdThreads(threads, macs int) int {
	if macs < 1<<18 {
		return 1
	}
	return threads
}

// epilogueInputs finishes the lowering of a SIMD layer whose epilogue takes
// an optional constant per-channel bias (input 2, 1-D or [1, channels]) and
// an optional float32 residual (input 3): it appends the bias to the
// weights and returns the step's run-time inputs (the activation, then the
// residual).
func epilogueInputs(l *engine.Layer, weights []*ir.Tensor, channels int) (_ []*ir.Tensor, inputs []int, bias, resid bool, err error) {
	n := l.Node
	if len(n.Inputs) > 4 {
		return nil, nil, false, false, fmt.Errorf("%s: too many inputs", n)
	}
	if hasInput(n, 2) {
		c := l.Const[2]
		if !isConst(l, 2) || c.DType != ir.Float32 || c.Len() != int64(channels) || !(len(c.Dims) == 1 || (len(c.Dims) == 2 && c.Dims[0] == 1)) {
			return nil, nil, false, false, fmt.Errorf("%s: the bias must be a constant float32[%d]", n, channels)
		}
		bias = true
		weights = append(weights, c.Clone())
	}
	inputs = []int{0}
	if hasInput(n, 3) {
		if inDType(l, 3) != ir.Float32 {
			return nil, nil, false, false, fmt.Errorf("%s: the residual must be float32", n)
		}
		resid = true
		inputs = append(inputs, 3)
	}
	return weights, inputs, bias, resid, nil
}
