package cudabackend

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// KernelGemm is the plan id of every convolution and matrix product on the
// GPU: im2col (or a padded copy) into a [Mp×Kp] matrix, one cuBLASLt GEMM
// against the packed weights [Np×Kp], and kiln's epilogue kernel (scales,
// bias, residual, activation, requantization, NCHW layout).
const KernelGemm = "cuda.gemm"

// pad is the multiple every GEMM dimension is padded to: FP8 and IMMA
// kernels need 16-element alignment, and the zero padding adds nothing.
const pad = 16

// directMaxK is the longest reduction (per group) for which the direct
// convolution is offered as a tactic to time against the GEMM paths (a
// network's first layer, depthwise layers); grouped convolutions are
// always offered it. KILN_CUDA_DIRECT_K overrides it (0: only grouped).
var directMaxK = envInt("KILN_CUDA_DIRECT_K", 32)

// Convolution tactics: how a conv step computes (gemmParams.Mode).
const (
	modeIm2col   = ""          // im2col + cuBLASLt + epilogue kernel (every type; Gemm/MatMul too)
	modeImplicit = "implicit"  // igemm.cu: implicit GEMM on the tensor cores, epilogue fused (16- and 8-bit inputs)
	modeDirect   = "direct"    // dconv_*: one thread per output, epilogue fused (small K, grouped)
	modeNCHW     = "nchw"      // cuBLASLt per image in NCHW (ORDER_ROW), bias/ReLU/residual in its epilogue (float types)
	modeNHWC     = "nhwc"      // igemm.cu's ign_*: implicit GEMM on channels-last activations (layout.go)
	modeGemmNHWC = "gemm_nhwc" // 1×1 stride-1 16-bit float conv on channels-last activations: one cuBLASLt GEMM, bias/ReLU/residual in its epilogue
	modeNHWC3    = "nhwc3"     // modeNHWC's ign3_* variant: 2 stages, 3 blocks per SM
	modeNHWCF8   = "nhwc_f8"   // E4M3 on the FP8 tensor cores (ignf_*, 3 stages): not bit-exact (igemm.cu mma16)
	modeNHWC3F8  = "nhwc3_f8"  // the same with 2 stages, 3 blocks per SM (ign3f_*)
	modeNHWCWG   = "nhwc_wg"   // 8-bit NHWC on Hopper's warpgroup MMA (wgmma.cu ignw_*, 4 stages); E4M3 not bit-exact
	modeNHWC3WG  = "nhwc3_wg"  // the same with 2 stages, 3 blocks per SM (ignw3_*)
	modeNHWCWGP  = "nhwc_wgp"  // wgmmap.cu's persistent ignp_* (3 stages, 2 blocks per SM): 8-bit outputs, code residuals
	modeNHWCWGQ  = "nhwc_wgq"  // the persistent kernel with 128-channel tiles (ignq_*, 2 stages, 2 blocks per SM): 128+ output channels
	modeNHWCWGR  = "nhwc_wgr"  // ignq_* without a residual, 3 stages (ignr_*)
	modeNHWCWGH  = "nhwc_wgh"  // 3×3 stride-1 convs from a halo tile (wgmmah.cu ignh_*, 64-channel tiles)
	modeNHWCWGHQ = "nhwc_wghq" // the same with 128-channel tiles (ignhq_*)
	modeNHWCWGHP = "nhwc_wghp" // the persistent halo kernel: every tap's weights resident, 8×8-pixel sub-tiles per warpgroup (ignhp{1,2,4}_*, C = 32, 64 or 128)
	// kwSuffix on an NHWC mode: the input expanded along the kernel width
	// first (kiln.cu kwexpand_*), a layer with few channels run as a KH×1
	// convolution over KW·C channels (gemmParams.KWX)
	kwSuffix = "_kw"
)

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }

type gemmParams struct {
	Shape shapeSpec `json:"shape"`
	Conv  bool      `json:"conv"`
	// convolution geometry (2D, one group)
	KH, KW, SH, SW, PH, PW, DH, DW int
	N, K, Np, Kp                   int64 // output channels, reduction, padded
	In                             cuda.DataType
	Out                            ir.DType
	HasBias, HasScale, HasZ        bool
	// uint8 activations (ONNX Runtime's asymmetric form): XZero shifts
	// them to int8; ColSum (a weight) corrects the accumulator
	Uint8              bool
	XZero              int
	ZeroFix            bool    // a colsum weight follows the scales
	AutoPad            string  // SAME_UPPER / SAME_LOWER: pads computed from the input
	Groups             int     // convolution groups (> 1: direct or implicit only)
	Direct             bool    // small-K convolution: kiln's direct kernel, no GEMM
	Implicit           bool    // implicit-GEMM convolution on the tensor cores
	NCHW               bool    // cuBLASLt in NCHW with its epilogue (no kiln epilogue pass)
	NHWC               bool    // channels-last implicit GEMM; weights packed with the reduction in (kh, kw, c) order
	CPad               int64   // NHWC: input channels zero-padded to this (a first layer's 3 to one 16-byte chunk), else 0
	Blocks3            bool    // NHWC: the ign3_* kernels (2 stages, 3 blocks per SM)
	F8MMA              bool    // NHWC E4M3: the FP8-MMA kernels ignf_*/ign3f_* (not bit-exact) instead of the widening ones
	WG                 bool    // NHWC 8-bit: wgmma.cu's ignw_*/ignw3_* (warpgroup MMA, sm_90a)
	Persist            bool    // with WG: wgmmap.cu's persistent ignp_* (8-bit outputs, residual codes or none)
	Wide               bool    // with Persist: 128-channel tiles (ignq_*)
	Deep               bool    // with Wide: no residual, 3 stages (ignr_*)
	Halo               bool    // with WG: 3×3 stride-1 convs from a halo tile (ignh_*, with Wide ignhq_*, with Persist ignhp_*)
	Fast               bool    // with WG: the fast epilogue (fastepi.go; 8-bit outputs, codes may be one apart from the CPU engine's)
	KWX                int64   // NHWC: the input expanded along the kernel width to this many channels (KW·C padded to a chunk; kwExpandChannels), else 0
	GemmNHWC           bool    // 1×1 conv as a cuBLASLt GEMM on channels-last activations (nhwc.go)
	YNHWC              bool    // implicit/NCHW-input kernels: write device-only outputs NHWC (the next layer is likely NHWC)
	ZFmt               int     // residual type: 0 float32, 1 float16, 2 bfloat16; codes (ZScale > 0): 3 int8, 4 uint8, 5 E4M3FN, 6 E5M2
	ZScale             float32 // kilnq's z_scale: the residual's codes dequantized as DequantizeLinear does (common.cuh zcode)
	ZZero              int     // kilnq's z_zero
	Act                int
	ActA, ActB, YScale float32
	YZero              int
}

// residualFormats maps a residual's type to gemmParams.ZFmt; the 8-bit
// ones (from zfmtCodes on) are codes of quantized layers (kilnq's z_scale).
var residualFormats = map[ir.DType]int{ir.Float32: 0, ir.Float16: 1, ir.BFloat16: 2, ir.Int8: 3, ir.Uint8: 4, ir.Float8E4M3FN: 5, ir.Float8E5M2: 6}

const zfmtCodes = 3

var actCodes = map[string]int{"": 0, "Relu": 1, "Clip": 2, "LeakyRelu": 3, "Sigmoid": 4, "Tanh": 5, "Gelu": 6, "GeluTanh": 7, "HardSwish": 8, "HardSigmoid": 9}

// computeType maps an activation dtype to the GEMM input type.
func computeType(d ir.DType) (cuda.DataType, bool) {
	switch d {
	case ir.Float32:
		return cuda.R32F, true
	case ir.Float16:
		return cuda.R16F, true
	case ir.BFloat16:
		return cuda.R16BF, true
	case ir.Int8, ir.Uint8:
		return cuda.R8I, true
	case ir.Float8E4M3FN:
		return cuda.R8FE4M3, true
	}
	return 0, false
}

func irType(t cuda.DataType) ir.DType {
	switch t {
	case cuda.R16F:
		return ir.Float16
	case cuda.R16BF:
		return ir.BFloat16
	case cuda.R8I:
		return ir.Int8
	case cuda.R8FE4M3:
		return ir.Float8E4M3FN
	}
	return ir.Float32
}

// lowerGemm turns Conv/Gemm/MatMul and their kiln fused and quantized forms
// into a cuda.gemm step computed as mode says (convolutions), or says why
// it cannot.
func lowerGemm(l *engine.Layer, mode string) (*engine.Lowered, error) {
	mode, fast := strings.CutSuffix(mode, fastSuffix)
	n := l.Node
	op := n.OpType
	quant := op == "QConv" || op == "QGemm" || op == "QMatMul"
	fused := n.Domain == kiln.Domain
	if len(l.In) < 2 || l.In[0] == nil || l.Const[1] == nil {
		return nil, fmt.Errorf("needs a runtime input and constant weights")
	}
	if l.Const[0] != nil {
		return nil, fmt.Errorf("constant activations are folded, not run")
	}
	in, ok := computeType(l.In[0].DType)
	if !ok || (!quant && (in == cuda.R8I || in == cuda.R8FE4M3)) {
		return nil, fmt.Errorf("input type %s", l.In[0].DType)
	}
	if l.Out[0] == nil {
		return nil, fmt.Errorf("output type unknown")
	}
	p := gemmParams{In: in, Out: l.Out[0].DType}
	if _, ok := computeType(p.Out); !ok {
		return nil, fmt.Errorf("output type %s", p.Out)
	}
	w := l.Const[1]
	var wNK *ir.Tensor // logical [N, K] weights in their own dtype
	var err error
	switch op {
	case "Conv", "QConv":
		if w.Rank() != 4 || (l.In[0].HasShape && len(l.In[0].Shape) != 4) {
			return nil, fmt.Errorf("only 2D convolutions")
		}
		g, _ := n.AttrInt("group", 1)
		if g < 1 || w.Dims[0]%g != 0 || (l.In[0].HasShape && l.In[0].Shape[1].Known() && l.In[0].Shape[1].Value%g != 0) {
			return nil, fmt.Errorf("group %d does not divide the channels", g)
		}
		p.Groups = int(g)
		ap, _ := n.AttrString("auto_pad", "NOTSET")
		switch ap {
		case "NOTSET", "VALID", "":
		case "SAME_UPPER", "SAME_LOWER":
			p.AutoPad = ap
		default:
			return nil, fmt.Errorf("auto_pad %s", ap)
		}
		st, _ := n.AttrInts("strides", []int64{1, 1})
		pd, _ := n.AttrInts("pads", []int64{0, 0, 0, 0})
		dl, _ := n.AttrInts("dilations", []int64{1, 1})
		if len(st) != 2 || len(pd) != 4 || len(dl) != 2 {
			return nil, fmt.Errorf("strides/pads/dilations of the wrong length")
		}
		// only the begin pads place the window; the end pads shape the
		// output, which the reference inference computes
		p.Conv = true
		p.KH, p.KW, p.SH, p.SW, p.PH, p.PW, p.DH, p.DW = int(w.Dims[2]), int(w.Dims[3]), int(st[0]), int(st[1]), int(pd[0]), int(pd[1]), int(dl[0]), int(dl[1])
		p.N, p.K = w.Dims[0], w.Dims[1]*w.Dims[2]*w.Dims[3]
		wNK = &ir.Tensor{DType: w.DType, Dims: []int64{p.N, p.K}, Data: w.Data}
	case "Gemm", "QGemm":
		ta, _ := n.AttrInt("transA", 0)
		tb, _ := n.AttrInt("transB", 0)
		alpha, _ := n.AttrFloat("alpha", 1)
		beta, _ := n.AttrFloat("beta", 1)
		if ta != 0 || alpha != 1 || beta != 1 || w.Rank() != 2 {
			return nil, fmt.Errorf("Gemm with transA, alpha or beta other than 0, 1, 1")
		}
		if tb != 0 {
			wNK = w
		} else {
			wNK = transpose2(w)
		}
		p.N, p.K = wNK.Dims[0], wNK.Dims[1]
	case "MatMul", "QMatMul":
		if w.Rank() != 2 || (l.In[0].HasShape && len(l.In[0].Shape) < 2) {
			return nil, fmt.Errorf("MatMul needs constant 2D weights")
		}
		wNK = transpose2(w)
		p.N, p.K = wNK.Dims[0], wNK.Dims[1]
	default:
		return nil, fmt.Errorf("not a GEMM op")
	}
	p.Np, p.Kp = roundUp(p.N, pad), roundUp(p.K, pad)
	switch mode {
	case modeDirect:
		// a first layer's reduction (e.g. 1×3×3) is too short for a GEMM
		// to pay for im2col and the accumulator round trip
		if !p.Conv || (p.K > directMaxK && p.Groups == 1) {
			return nil, fmt.Errorf("direct convolution takes K <= %d or grouped convolutions (K %d)", directMaxK, p.K)
		}
		p.Direct = true
	case modeImplicit:
		if !p.Conv || in == cuda.R32F || igemmName(in, p.Out, l.In[0].DType == ir.Uint8) == "" {
			return nil, fmt.Errorf("implicit GEMM takes 16- and 8-bit convolutions (%s → %s)", l.In[0].DType, p.Out)
		}
		if p.N%int64(p.Groups) != 0 {
			return nil, fmt.Errorf("group %d does not divide %d output channels", p.Groups, p.N)
		}
		p.Implicit = true
		p.YNHWC = nhwcOn.Load() && nhwcOutput(p.Out, p.N)
	case modeNHWC, modeNHWC3, modeNHWCF8, modeNHWC3F8, modeNHWCWG, modeNHWC3WG, modeNHWCWGP,
		modeNHWC + kwSuffix, modeNHWC3 + kwSuffix, modeNHWCF8 + kwSuffix, modeNHWC3F8 + kwSuffix, modeNHWCWG + kwSuffix, modeNHWC3WG + kwSuffix,
		modeNHWCWGP + kwSuffix, modeNHWCWGQ, modeNHWCWGR, modeNHWCWGH, modeNHWCWGHQ, modeNHWCWGHP:
		base, kw := strings.CutSuffix(mode, kwSuffix)
		if !p.Conv {
			// a matrix product as a 1×1 stride-1 unpadded convolution over
			// its M rows (nhwcLowers says which)
			if kw || base == modeNHWCWGH || base == modeNHWCWGHQ || base == modeNHWCWGHP {
				return nil, fmt.Errorf("a matrix product runs on the NHWC implicit GEMM without kernel-width expansion or halo tiles (mode %s)", mode)
			}
			p.KH, p.KW, p.SH, p.SW, p.DH, p.DW = 1, 1, 1, 1, 1, 1
		}
		if err := nhwcLowers(p, in, l); err != nil {
			return nil, err
		}
		p.F8MMA = base == modeNHWCF8 || base == modeNHWC3F8
		if p.F8MMA && in != cuda.R8FE4M3 {
			return nil, fmt.Errorf("the FP8-MMA NHWC implicit GEMM takes E4M3 input (%s)", l.In[0].DType)
		}
		p.Persist = base == modeNHWCWGP || base == modeNHWCWGQ || base == modeNHWCWGR || base == modeNHWCWGHP
		p.Halo = base == modeNHWCWGH || base == modeNHWCWGHQ || base == modeNHWCWGHP
		p.Wide = base == modeNHWCWGQ || base == modeNHWCWGR || base == modeNHWCWGHQ
		p.Deep = base == modeNHWCWGR
		if p.Wide && p.N < 128 {
			return nil, fmt.Errorf("128-channel tiles are for layers with 128 or more output channels (%d)", p.N)
		}
		p.WG = base == modeNHWCWG || base == modeNHWC3WG || p.Persist || p.Halo
		if p.WG && in != cuda.R8I && in != cuda.R8FE4M3 {
			return nil, fmt.Errorf("the wgmma NHWC implicit GEMM takes int8 or E4M3 input (%s)", l.In[0].DType)
		}
		p.NHWC, p.Blocks3 = true, base == modeNHWC3 || base == modeNHWC3F8 || base == modeNHWC3WG
		if kw {
			cx, err := kwExpandChannels(p, in)
			if err != nil {
				return nil, err
			}
			wNK, p.KWX = kwExpandWeights(wNK, p.KH, p.KW, cx), cx
			p.K, p.Kp = wNK.Dims[1], roundUp(wNK.Dims[1], pad)
			break
		}
		if cpad := nhwcChannels(p.K/int64(p.KH*p.KW), in); cpad != p.K/int64(p.KH*p.KW) {
			wNK, p.CPad = padChannels(wNK, p.KH*p.KW, cpad), cpad
			p.K, p.Kp = wNK.Dims[1], roundUp(wNK.Dims[1], pad)
		}
		wNK = khwcOrder(wNK, p.KH*p.KW)
	case modeGemmNHWC:
		if err := gemmNHWCLowers(p, in, quant, n); err != nil {
			return nil, err
		}
		p.GemmNHWC = true
	case modeNCHW:
		if !p.Conv || p.Groups > 1 || quant || irType(in) != p.Out {
			return nil, fmt.Errorf("the NCHW cuBLASLt convolution takes ungrouped float convolutions with output of the input's type")
		}
		p.NCHW = true
	default:
		if p.Groups > 1 {
			return nil, fmt.Errorf("grouped convolution (group %d) runs on the direct or implicit kernels", p.Groups)
		}
	}

	// weights in the GEMM's input type, zero padded to [Np, Kp]
	wt := irType(in)
	if quant && w.DType != wt {
		return nil, fmt.Errorf("weights %s with activations %s", w.DType, wt)
	}
	if !quant && !w.DType.IsFloat() {
		return nil, fmt.Errorf("weights %s", w.DType)
	}
	packed := ir.NewTensor(wt, []int64{p.Np, p.Kp})
	esz := wt.ByteSize(1)
	for r := int64(0); r < p.N; r++ {
		if wt == w.DType {
			copy(packed.Data[r*p.Kp*esz:(r*p.Kp+p.K)*esz], wNK.Data[r*p.K*esz:(r+1)*p.K*esz])
			continue
		}
		for c := int64(0); c < p.K; c++ {
			packed.SetFloat64At(r*p.Kp+c, wNK.Float64At(r*p.K+c))
		}
	}
	weights := []*ir.Tensor{packed}
	p.Uint8 = l.In[0].DType == ir.Uint8
	if p.Uint8 && !quant {
		return nil, fmt.Errorf("uint8 input to a float layer")
	}

	// bias: Conv B, Gemm C, kiln.MatMul Bias: float32 [N]
	if len(n.Inputs) > 2 && n.Inputs[2] != "" {
		b := l.Const[2]
		if b == nil {
			return nil, fmt.Errorf("runtime bias")
		}
		nb, _ := ir.NumElements(b.Dims)
		if nb != p.N && nb != 1 {
			return nil, fmt.Errorf("bias of shape %v", b.Dims)
		}
		bias := ir.NewTensor(ir.Float32, []int64{p.N})
		for c := int64(0); c < p.N; c++ {
			bias.F32()[c] = float32(b.Float64At(min(c, nb-1)))
		}
		weights = append(weights, bias)
		p.HasBias = true
	}
	runIn := []int{0}
	if len(n.Inputs) > 3 && n.Inputs[3] != "" {
		if !fused {
			return nil, fmt.Errorf("unexpected fourth input")
		}
		if l.In[3] == nil || l.Const[3] != nil {
			return nil, fmt.Errorf("residual must be a runtime tensor")
		}
		var ok bool
		if p.ZFmt, ok = residualFormats[l.In[3].DType]; !ok || (!quant && p.ZFmt >= zfmtCodes) {
			return nil, fmt.Errorf("residual of type %s", l.In[3].DType)
		}
		p.HasZ = true
		runIn = append(runIn, 3)
	}
	if p.Persist || p.Halo { // after the residual is known
		if err := persistLowers(p); err != nil {
			return nil, err
		}
	}
	if fused {
		a, err := kiln.ActivationOf(n)
		if err != nil {
			return nil, err
		}
		code, ok := actCodes[a.Kind]
		if !ok {
			return nil, fmt.Errorf("activation %s", a.Kind)
		}
		p.Act, p.ActA, p.ActB = code, a.Alpha, a.Beta
	}
	if p.NCHW || p.GemmNHWC {
		if p.HasZ && p.ZFmt != map[ir.DType]int{ir.Float32: 0, ir.Float16: 1, ir.BFloat16: 2}[p.Out] {
			return nil, fmt.Errorf("residual type differs from the output")
		}
	}
	if quant {
		q, err := kilnq.ParseLayer(n, l.In[0].DType)
		if err != nil {
			return nil, err
		}
		if p.HasZ {
			// codes (z_scale > 0) or float32: every kernel here reads both
			// (ldres/ldres8); the cuBLASLt-epilogue modes take no quantized layer
			if err := q.CheckResidual(l.In[3].DType); err != nil {
				return nil, fmt.Errorf("%s: %v", n, err)
			}
			p.ZScale, p.ZZero = q.ZScale, int(q.ZZero)
		}
		if p.NHWC && q.XZero != 0 {
			return nil, fmt.Errorf("the NHWC implicit GEMM zero-fills padding: no input zero point (x_zero %d)", q.XZero)
		}
		p.XZero, p.YZero = int(q.XZero), int(q.YZero)
		p.ZeroFix = p.Uint8 || p.XZero != 0
		if q.OutType != p.Out {
			return nil, fmt.Errorf("output %s but y_scale says %s", p.Out, q.OutType)
		}
		if len(q.WScales) != 1 && int64(len(q.WScales)) != p.N {
			return nil, fmt.Errorf("%d w_scales for %d channels", len(q.WScales), p.N)
		}
		ms := ir.NewTensor(ir.Float32, []int64{p.N})
		for c := range ms.F32() {
			ms.F32()[c] = q.XScale * q.WScales[min(c, len(q.WScales)-1)]
		}
		weights = append(weights, ms)
		p.HasScale, p.YScale = true, q.YScale
		if p.NHWC && p.YScale != 0 && (p.YScale < 0x1p-40 || p.YScale > 0x1p40) {
			// igemm.cu's qdivr (the NHWC epilogue's division) is exact for these scales
			return nil, fmt.Errorf("the NHWC implicit GEMM takes y_scale in [2^-40, 2^40] (%g)", p.YScale)
		}
		if p.ZeroFix {
			// Σ_k w[c,k] for the zero-point correction zc·Σw
			cs := ir.NewTensor(ir.Int32, []int64{p.Np})
			for c := int64(0); c < p.N; c++ {
				var sum int32
				for k := int64(0); k < p.Kp; k++ {
					sum += int32(int8(packed.Data[c*p.Kp+k]))
				}
				cs.I32()[c] = sum
			}
			weights = append(weights, cs)
		}
	} else if p.Out == ir.Int8 || p.Out == ir.Uint8 || p.Out == ir.Float8E4M3FN {
		return nil, fmt.Errorf("quantized output from a float layer")
	}
	if fast {
		if err := fastLowers(p); err != nil {
			return nil, err
		}
		p.Fast = true
	}
	if p.Shape, err = newShapeSpec(l, runIn); err != nil {
		return nil, err
	}
	params, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return &engine.Lowered{Kernel: KernelGemm, Params: params, Weights: weights, Inputs: runIn}, nil
}

// transpose2 returns the transpose of a 2D tensor of any byte-sized dtype.
func transpose2(t *ir.Tensor) *ir.Tensor {
	r, c := t.Dims[0], t.Dims[1]
	o := ir.NewTensor(t.DType, []int64{c, r})
	esz := t.DType.ByteSize(1)
	for i := int64(0); i < r; i++ {
		for j := int64(0); j < c; j++ {
			copy(o.Data[(j*r+i)*esz:(j*r+i+1)*esz], t.Data[(i*c+j)*esz:(i*c+j+1)*esz])
		}
	}
	return o
}

type gemmKernel struct {
	*shaper
	link
	p              gemmParams
	w              *devWeights
	W, bias, scale cuda.DevPtr
	colsum         cuda.DevPtr
	ktab           cuda.DevPtr // implicit GEMM: reduction index → (channel, row, column offsets)
	wtap           cuda.DevPtr // depthwise on NHWC: the weights tap-major, [KH·KW][N] (nhwc.go)
	mu             sync.Mutex
	nplans         map[[2]int64]*cuda.ConvGemm // NCHW mode, by (batch, pixels)
	plans          map[int64]*cuda.Gemm        // by padded M
	host           []*ir.Tensor
	upMu           sync.Mutex
	uploaded       bool
	boundsOnce     sync.Once // codeBounds
	bounds         epilogueBounds
	boundsErr      error
}

func decodeGemm(params []byte, weights []*ir.Tensor) (engine.Kernel, error) {
	k := &gemmKernel{plans: map[int64]*cuda.Gemm{}, w: &devWeights{}}
	if err := json.Unmarshal(params, &k.p); err != nil {
		return nil, err
	}
	var err error
	if k.shaper, err = k.p.Shape.decode(); err != nil {
		return nil, err
	}
	want := 1
	if k.p.HasBias {
		want++
	}
	if k.p.HasScale {
		want++
	}
	if k.p.ZeroFix {
		want++
	}
	if len(weights) != want {
		return nil, fmt.Errorf("%d weights, want %d", len(weights), want)
	}
	if int64(len(weights[0].Data)) != k.p.Np*k.p.Kp*k.p.In.Size() {
		return nil, fmt.Errorf("packed weights of %d bytes, want %d", len(weights[0].Data), k.p.Np*k.p.Kp*k.p.In.Size())
	}
	k.host = weights
	return k, nil
}

// upload copies the weights to the device on first use, so that plans load
// (and the builder plans memory) on machines without a GPU.
func (k *gemmKernel) upload() error {
	k.upMu.Lock()
	defer k.upMu.Unlock()
	if k.uploaded {
		return nil
	}
	var err error
	if k.W, err = k.w.upload(k.host[0].Data); err != nil {
		return err
	}
	i := 1
	if k.p.Fast { // the fast epilogue's scales and biases (fastepi.go) instead of the plan's
		sc, bi := k.hostScaleBias()
		s, b := fastScaleBias(k.p, sc, bi, int(k.p.N))
		if k.scale, err = k.w.upload(f32Bytes(s)); err != nil {
			return err
		}
		if k.bias, err = k.w.upload(f32Bytes(b)); err != nil {
			return err
		}
		i += b2i(k.p.HasBias) + b2i(k.p.HasScale)
	} else {
		if k.p.HasBias {
			b := k.host[i].Data
			if k.p.GemmNHWC { // cuBLASLt's bias has the output's type
				b = bias16(k.host[i], k.p.Out)
			}
			if k.bias, err = k.w.upload(b); err != nil {
				return err
			}
			i++
		}
		if k.p.HasScale {
			if k.scale, err = k.w.upload(k.host[i].Data); err != nil {
				return err
			}
			i++
		}
	}
	if k.p.ZeroFix {
		if k.colsum, err = k.w.upload(k.host[i].Data); err != nil {
			return err
		}
	}
	if k.p.Implicit {
		if k.ktab, err = k.w.upload(kTable(k.p)); err != nil {
			return err
		}
	}
	k.uploaded = true
	return nil
}

func (k *gemmKernel) plan(g *device, mp int64) (*cuda.Gemm, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if gp := k.plans[mp]; gp != nil {
		return gp, nil
	}
	out := cuda.R32F
	if k.p.In == cuda.R8I {
		out = cuda.R32I
	}
	gp, err := g.blas.Plan(cuda.GemmDesc{M: mp, N: k.p.Np, K: k.p.Kp, In: k.p.In, Out: out}, workspaceBytes)
	if err != nil {
		return nil, err
	}
	k.plans[mp] = gp
	return gp, nil
}

var im2colByWidth = map[int64]string{4: "im2col_b4", 2: "im2col_b2", 1: "im2col_b1"}

func (k *gemmKernel) epilogueName() string {
	acc := "f32"
	if k.p.In == cuda.R8I {
		acc = "i32"
	}
	switch k.p.Out {
	case ir.Float16, ir.BFloat16:
		return "epi_" + acc + "_16"
	case ir.Int8:
		return "epi_" + acc + "_i8"
	case ir.Uint8:
		return "epi_" + acc + "_u8"
	case ir.Float8E4M3FN:
		return "epi_" + acc + "_e4m3"
	}
	return "epi_" + acc + "_f32"
}

func (k *gemmKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	X, Y := in[0], out[0]
	var M, HW int64
	var nb, c, h, w, oh, ow int
	if k.p.Conv {
		if X.Rank() != 4 || Y.Rank() != 4 {
			return fmt.Errorf("convolution input %v", X.Dims)
		}
		nb, c, h, w = int(X.Dims[0]), int(X.Dims[1]), int(X.Dims[2]), int(X.Dims[3])
		oh, ow = int(Y.Dims[2]), int(Y.Dims[3])
		M, HW = int64(nb)*int64(oh)*int64(ow), int64(oh)*int64(ow)
		if k.p.KWX > 0 {
			// expanded along the kernel width: KW·C channels padded to KWX
			if k.p.KWX != nhwcChannels(int64(c*k.p.KW), k.p.In) || k.p.K != int64(k.p.KH)*k.p.KWX {
				return fmt.Errorf("input has %d channels, the expanded weights want %d", c, k.p.KWX)
			}
		} else if k.p.CPad > 0 && int64(c) <= k.p.CPad && k.p.CPad == nhwcChannels(int64(c), k.p.In) {
			// padded channels: checked against the padded count
		} else if int64(c*k.p.KH*k.p.KW) != k.p.K*int64(max(k.p.Groups, 1)) {
			return fmt.Errorf("input has %d channels, the weights want %d", c, k.p.K*int64(max(k.p.Groups, 1))/int64(k.p.KH*k.p.KW))
		}
	} else {
		M, HW = 1, 1
		for _, d := range X.Dims[:X.Rank()-1] {
			M *= d
		}
		if X.Dims[X.Rank()-1] != k.p.K {
			return fmt.Errorf("input %v, the weights want %d columns", X.Dims, k.p.K)
		}
		nb, c, h, w, oh, ow = int(M), int(k.p.K), 1, 1, 1, 1
	}
	Mp := roundUp(M, pad)
	esz := k.p.In.Size()
	if err := k.upload(); err != nil {
		return err
	}
	if k.p.Direct {
		return k.runDirect(x, in, out, nb, c, h, w, oh, ow)
	}
	if k.p.Implicit {
		return k.runImplicit(x, in, out, nb, c, h, w, oh, ow)
	}
	if k.p.NCHW {
		return k.runNCHW(x, in, out, nb, c, h, w, oh, ow)
	}
	if k.p.NHWC {
		return k.runNHWC(x, in, out, nb, c, h, w, oh, ow)
	}
	if k.p.GemmNHWC {
		return k.runGemmNHWC(x, in, out, nb, oh, ow)
	}
	return step(x, in, out, func(g *device, st *execState, mark func(int) error) (bool, error) {
		gp, err := k.plan(g, Mp)
		if err != nil {
			return false, err
		}
		need := alignUp(int64(len(X.Data))) + alignUp(Mp*k.p.Kp*esz) + alignUp(Mp*k.p.Np*4)
		if k.p.HasZ {
			need += alignUp(int64(len(in[1].Data)))
		}
		if err := st.reserve(g, need); err != nil {
			return false, err
		}
		cols, acc := st.take(Mp*k.p.Kp*esz), st.take(Mp*k.p.Np*4)
		dX, err := st.input(g, X, k.onDevice(0))
		if err != nil {
			return false, err
		}
		var dZ cuda.DevPtr
		if k.p.HasZ {
			if dZ, err = st.input(g, in[1], k.onDevice(1)); err != nil {
				return false, err
			}
		}
		dY, err := st.residentFor(g, Y)
		if err != nil {
			return false, err
		}
		if err := mark(1); err != nil {
			return false, err
		}
		kh, kw, sh, sw, ph, pw, dh, dw := k.p.KH, k.p.KW, k.p.SH, k.p.SW, k.p.PH, k.p.PW, k.p.DH, k.p.DW
		if !k.p.Conv {
			kh, kw, sh, sw, ph, pw, dh, dw = 1, 1, 1, 1, 0, 0, 1, 1
		}
		if k.p.AutoPad != "" {
			ph, pw = samePad(h, oh, kh, sh, dh, k.p.AutoPad), samePad(w, ow, kw, sw, dw, k.p.AutoPad)
		}
		args := cuda.NewArgs(dX, cols, nb, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, int(k.p.Kp), Mp)
		name := im2colByWidth[esz]
		if k.p.ZeroFix {
			name = "im2col_zp"
			args.Add(k.p.XZero).Add(b2i(k.p.Uint8))
		}
		if err := launch1(g, st, name, Mp*k.p.Kp, args); err != nil {
			return false, err
		}
		if err := gp.Run(st.blas, st.s, cols, k.W, acc, st.ws, workspaceBytes); err != nil {
			return false, err
		}
		zp := k.p.YZero
		if k.p.Out == ir.BFloat16 {
			zp = 1 // the 16-bit epilogue reads zp as "bfloat16"
		}
		ys := k.p.YScale
		if ys == 0 {
			ys = 1
		}
		args = cuda.NewArgs(acc, int(k.p.Np), dY, M, int(k.p.N), int(HW), k.scale, k.bias, dZ, k.p.ZFmt, k.p.ZScale, k.p.ZZero, k.p.Act, k.p.ActA, k.p.ActB, ys, zp, k.colsum, 128*b2i(k.p.Uint8)-k.p.XZero)
		f, err := g.fn(k.epilogueName())
		if err != nil {
			return false, err
		}
		grid := grid1(g, M*k.p.N)
		if HW > 1 {
			tiles := (M + 31) / 32 * ((k.p.N + 31) / 32)
			grid = [3]uint32{uint32(min(tiles, int64(g.d.SMs)*16)), 1, 1}
		}
		if err := f.Launch(st.s, grid, block256, 0, args); err != nil {
			return false, err
		}
		if err := mark(2); err != nil {
			return false, err
		}
		return k.finish(st, out, []cuda.DevPtr{dY})
	})
}

// pads are the begin pads of the conv for an h×w input and oh×ow output:
// the attribute's, or auto_pad's SAME_UPPER/SAME_LOWER computed per axis.
func (p *gemmParams) pads(h, w, oh, ow int) (ph, pw int) {
	if p.AutoPad == "" {
		return p.PH, p.PW
	}
	return samePad(h, oh, p.KH, p.SH, p.DH, p.AutoPad), samePad(w, ow, p.KW, p.SW, p.DW, p.AutoPad)
}

// outQuant is the output scale and zero point the epilogue kernels take: 1
// for a float output (YScale 0), and zero point 1 marking bfloat16 output.
func (p *gemmParams) outQuant() (ys float32, zp int) {
	ys, zp = p.YScale, p.YZero
	if ys == 0 {
		ys = 1
	}
	if p.Out == ir.BFloat16 {
		zp = 1
	}
	return ys, zp
}

// samePad is the begin pad of auto_pad SAME_UPPER/SAME_LOWER for one axis.
func samePad(in, out, k, s, d int, mode string) int {
	total := max((out-1)*s+(k-1)*d+1-in, 0)
	if mode == "SAME_LOWER" {
		return (total + 1) / 2
	}
	return total / 2
}

// inputFormat is the fmt code of the direct kernel for the layer's input.
func (k *gemmKernel) inputFormat() int {
	switch {
	case k.p.Uint8:
		return 4
	case k.p.In == cuda.R16F:
		return 1
	case k.p.In == cuda.R16BF:
		return 2
	case k.p.In == cuda.R8I:
		return 3
	case k.p.In == cuda.R8FE4M3:
		return 5
	}
	return 0
}

// runDirect reads X in whichever layout its producer wrote and writes Y in
// the same one (NCHW when the host reads Y).
func (k *gemmKernel) runDirect(x *engine.Exec, in, out []*ir.Tensor, nb, c, h, w, oh, ow int) error {
	X, Y := in[0], out[0]
	return step(x, in, out, func(g *device, st *execState, mark func(int) error) (bool, error) {
		need := alignUp(int64(len(X.Data)))
		if k.p.HasZ {
			need += alignUp(int64(len(in[1].Data)))
		}
		if err := st.reserve(g, need); err != nil {
			return false, err
		}
		dX, xn, err := st.inputRaw(g, X, k.onDevice(0))
		if err != nil {
			return false, err
		}
		yn := xn && !k.toHost(0) && layoutMatters(Y.Dims)
		var dZ cuda.DevPtr
		if k.p.HasZ {
			if dZ, err = st.inputAs(g, in[1], k.onDevice(1), yn); err != nil {
				return false, err
			}
		}
		dY, err := st.residentFor(g, Y)
		if err != nil {
			return false, err
		}
		st.setNHWC(Y, yn)
		if err := mark(1); err != nil {
			return false, err
		}
		ph, pw := k.p.pads(h, w, oh, ow)
		ys, zp := k.p.outQuant()
		fmtIn := k.inputFormat()
		if dwName := map[ir.DType]string{ir.Float32: "dw_nhwc8_f32", ir.Float16: "dw_nhwc8_16", ir.BFloat16: "dw_nhwc8_16",
			ir.Int8: "dw_nhwc8_i8", ir.Uint8: "dw_nhwc8_u8", ir.Float8E4M3FN: "dw_nhwc8_e4m3"}[k.p.Out]; xn && yn && dwName != "" && fmtIn >= 1 && fmtIn <= 5 &&
			k.p.Groups == c && int64(c) == k.p.N && k.p.K == int64(k.p.KH*k.p.KW) && c%8 == 0 {
			// depthwise on channels-last: 8 channels per thread, vector loads
			wt, err := k.tapMajor()
			if err != nil {
				return false, err
			}
			args := cuda.NewArgs(dX, wt, dY, nb, c, h, w, oh, ow, k.p.KH, k.p.KW, k.p.SH, k.p.SW, ph, pw, k.p.DH, k.p.DW,
				k.scale, k.bias, dZ, k.p.ZFmt, k.p.ZScale, k.p.ZZero, k.p.Act, k.p.ActA, k.p.ActB, ys, zp, k.p.XZero, fmtIn, divisionFree(ys))
			if err := launch1(g, st, dwName, Y.Len()/8, args); err != nil {
				return false, err
			}
			if err := mark(2); err != nil {
				return false, err
			}
			return k.finish(st, out, []cuda.DevPtr{dY})
		}
		name := map[ir.DType]string{ir.Float32: "dconv_f32", ir.Float16: "dconv_16", ir.BFloat16: "dconv_16",
			ir.Int8: "dconv_i8", ir.Uint8: "dconv_u8", ir.Float8E4M3FN: "dconv_e4m3"}[k.p.Out]
		args := cuda.NewArgs(dX, k.W, dY, nb, c, h, w, oh, ow, k.p.KH, k.p.KW, k.p.SH, k.p.SW, ph, pw, k.p.DH, k.p.DW,
			int(k.p.Kp), int(k.p.N), k.scale, k.bias, dZ, k.p.ZFmt, k.p.ZScale, k.p.ZZero, k.p.Act, k.p.ActA, k.p.ActB, ys, zp, k.p.XZero, fmtIn, max(k.p.Groups, 1),
			b2i(xn), b2i(yn))
		if err := launch1(g, st, name, Y.Len(), args); err != nil {
			return false, err
		}
		if err := mark(2); err != nil {
			return false, err
		}
		return k.finish(st, out, []cuda.DevPtr{dY})
	})
}

// divisionFree is the yr argument of kernels with common.cuh's
// division-free requantization (dw_nhwc8_*): RN(1/ys) where qdivr is
// exact (ys in [2⁻⁴⁰, 2⁴⁰]), else 0 (the kernel divides).
func divisionFree(ys float32) float32 {
	if ys < 0x1p-40 || ys > 0x1p40 {
		return 0
	}
	return 1 / ys
}
