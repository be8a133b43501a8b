// Package cudabackend runs engine layers on an NVIDIA GPU: convolutions and
// matrix products through cuBLASLt (FP32, FP16, BF16, INT8 IMMA with int32
// accumulation, FP8 E4M3) with kiln's own epilogue kernel (scales, bias,
// residual, activation, requantization), and elementwise, pooling, softmax,
// layer norm, quantize, dequantize and cast kernels in CUDA C compiled by
// NVRTC (gpu/cuda).
//
// The backend offers tactics only when enabled (Enable, or KILN_DEVICE=cuda
// in the environment) and a GPU is usable, so CPU builds are unchanged.
// Each step copies its inputs to the device, computes and copies its
// outputs back (engine tensors live in host memory); weights are uploaded
// once when the engine is loaded. ReadTiming splits the time into H2D,
// compute and D2H, as trtexec does.
package cudabackend

import (
	"os"
	"sync/atomic"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ops/kiln"
)

// Priority is above the CPU backends, so an enabled GPU wins every layer it
// implements.
const Priority = 50

var enabled atomic.Bool

// offerWithoutDevice lets tests look at lowering decisions on machines
// without a GPU (plans built so cannot run there).
var offerWithoutDevice bool

// Enable makes the builder prefer CUDA tactics; it fails (wrapping
// cuda.ErrNoDevice) when no GPU is usable.
func Enable() error {
	if err := Available(); err != nil {
		return err
	}
	enabled.Store(true)
	return nil
}

// Disable returns the builder to CPU backends.
func Disable() { enabled.Store(false) }

// Enabled reports whether CUDA tactics are offered.
func Enabled() bool { return enabled.Load() }

// Backend is the CUDA backend.
type Backend struct{}

func (Backend) Name() string  { return "cuda" }
func (Backend) Priority() int { return Priority }

// Exclusive: a layer the GPU implements stays on it (engine.ExclusiveBackend).
func (Backend) Exclusive() bool { return true }

// Tactics offers the GEMM tactic for convolutions and matrix products, and
// the op kernel for the rest, when enabled and the GPU is usable.
func (Backend) Tactics(l *engine.Layer) []engine.Tactic {
	if !offerWithoutDevice && (!Enabled() || Available() != nil) {
		return nil
	}
	n := l.Node
	if n.Attr(kiln.PoolAttr) != nil {
		return nil // no kernel for a fused pool (the builder does not fuse while this backend is enabled)
	}
	switch {
	case (n.Domain == "" || n.Domain == kiln.Domain) && n.OpType == "Conv", n.Domain == kiln.Domain && n.OpType == "QConv":
		// the builder times those that lower (GPU compute time, see
		// gemmKernel.TimeRun); without timing the first that lowers wins
		im2col, implicit, direct := gemmTactic("cublaslt.im2col", modeIm2col), gemmTactic("implicit_gemm", modeImplicit), gemmTactic("direct", modeDirect)
		nchw := gemmTactic("cublaslt.nchw", modeNCHW)
		if g, _ := n.AttrInt("group", 1); g > 1 {
			if nhwcOn.Load() && depthwiseNHWC(l, g) {
				// run on channels-last activations, direct is dw_nhwc8_*, but the
				// timer stages NCHW (where it is dconv_*): offered alone, as the
				// NHWC conv tactics are (an NCHW implicit_gemm picked by that timing
				// cost mobilenetv2 FP16 28 ms at batch 256 once)
				return []engine.Tactic{direct}
			}
			return []engine.Tactic{direct, implicit}
		}
		if nhwcOn.Load() && igemmUsable() {
			// channels-last: offered alone where it lowers, so that the
			// timing (which sees no layout changes) cannot pick an NCHW
			// tactic between NHWC neighbours
			if _, err := lowerGemm(l, modeNHWC); err == nil {
				return nhwcTactics(l)
			}
		}
		return []engine.Tactic{implicit, nchw, im2col, direct}
	case n.Domain == "" && (n.OpType == "Gemm" || n.OpType == "MatMul"),
		n.Domain == kiln.Domain && (n.OpType == "Gemm" || n.OpType == "MatMul" || n.OpType == "QGemm" || n.OpType == "QMatMul"):
		tacs := []engine.Tactic{gemmTactic("cublaslt", modeIm2col)}
		if nhwcOn.Load() {
			// a 2D input is layout-free, so the channels-last GEMMs (a 1×1
			// conv over the rows) are timed against cuBLASLt: its im2col copy
			// and epilogue pass cost more than the product at small M (the
			// classifier of ResNet-50, M = batch)
			if _, err := lowerGemm(l, modeNHWC); err == nil && igemmUsable() {
				nt := nhwcTactics(l)
				if only := tacticOnly.Load(); only != nil && len(nt) == 1 && nt[0].Name() == *only {
					return nt // OfferOnly: that kernel alone
				}
				tacs = append(tacs, nt...)
			}
		}
		return tacs
	case n.Domain == "", n.Domain == kiln.Domain && n.OpType == "LayerNorm":
		// kiln.LayerNorm is the transformer pass's form of LayerNormalization
		// (passes/layernorm.go): the same kernel
		return []engine.Tactic{tactic{"kernel", lowerOp}}
	}
	return nil
}

// VetoesPoolFusion keeps MaxPool a layer of its own while CUDA tactics are
// offered (builder.PoolFusionVeto).
func (Backend) VetoesPoolFusion() bool {
	return offerWithoutDevice || (Enabled() && Available() == nil)
}

type tactic struct {
	name  string
	lower func(*engine.Layer) (*engine.Lowered, error)
}

func gemmTactic(name, mode string) tactic {
	return tactic{name, func(l *engine.Layer) (*engine.Lowered, error) { return lowerGemm(l, mode) }}
}

func (t tactic) Name() string                                   { return t.name }
func (t tactic) Lower(l *engine.Layer) (*engine.Lowered, error) { return t.lower(l) }

func init() {
	engine.RegisterKernel(KernelGemm, decodeGemm)
	engine.RegisterKernel(KernelOp, decodeOp)
	engine.RegisterBackend(Backend{})
	if os.Getenv("KILN_DEVICE") == "cuda" {
		Enable() // best effort: without a GPU the CPU backends build as usual
	}
}

// igemmUsable reports whether igemm.cu compiled for the device (compiling
// it on first use), so that a compiler that rejects it leaves the NCHW
// tactics offered instead of a channels-last one that cannot run. Without
// a device (lowering tests) it is taken as usable.
func igemmUsable() bool {
	if offerWithoutDevice && Available() != nil {
		return true
	}
	g, err := getDevice()
	if err != nil {
		return false
	}
	unbind, err := g.d.Bind()
	if err != nil {
		return false
	}
	defer unbind()
	_, err = g.igemmFn("ign_f16_16")
	return err == nil
}
