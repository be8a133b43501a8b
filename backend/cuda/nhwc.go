package cudabackend

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
)

// igemm.cu's NHWC kernels: IGN_ST (3) stages of (IG_BM + IG_BN) rows of
// IGN_RB bytes of dynamic shared memory; 2 stages for ign3_*.
const (
	ignShared  = 3 * (igemmBM + igemmBN) * 144
	ign3Shared = 2 * (igemmBM + igemmBN) * 144
	// wgmma.cu's: 4 (ignw_*) or 2 (ignw3_*) stages of (IG_BM + IG_BN) rows
	// of 128 bytes, plus room to align the first to 1024 bytes, plus the
	// residual codes the epilogue prefetches (ign_prefetch_codes: 8 bytes of each of
	// the tile's IG_BM rows per 8 channels)
	ignwShared  = 4*(igemmBM+igemmBN)*128 + 1024 + igemmBM*igemmBN
	ignw3Shared = 2*(igemmBM+igemmBN)*128 + 1024 + igemmBM*igemmBN
	// wgmmap.cu's ignp_*: 3 stages, the 1024-byte alignment, two tiles'
	// code rows (igp<64>::RB: IG_BM rows of 80 bytes) and two tiles'
	// scales and biases (igp<64>::SB: 512 bytes)
	ignpShared = 3*(igemmBM+igemmBN)*128 + 1024 + 2*igemmBM*80 + 2*512
	// ignq_*: 2 stages of 128-channel tiles, rows of 144 code bytes, 1 KB of scales and biases per tile
	ignqShared = 2*(igemmBM+128)*128 + 1024 + 2*igemmBM*144 + 2*1024
	// ignr_*: 3 stages of 128-channel tiles, scales and biases (a tile's
	// codes are staged in a consumed stage)
	ignrShared = 3*(igemmBM+128)*128 + 1024 + 2*1024
	// wgmmah.cu's ignh_*: 4 stages of 64 rows of B, two halo buffers of 8
	// planes of 180 pixels × 16 bytes, the scales and biases, the alignment;
	// ignhq_*: 3 stages of 128 rows
	ighHalo    = 8 * 180 * 16
	ighShared  = 4*64*128 + 2*ighHalo + 8*64 + 1024
	ighqShared = 3*128*128 + 2*ighHalo + 8*128 + 1024
	// ignhp*_*: every tap's weights (9·C·64 bytes), four halos of C/16
	// planes of 100 pixels × 16 bytes, the code rows, the scales and biases
	ighpBN = 64
)

// ighpShared is ignhp_*'s dynamic shared memory for c input channels.
func ighpShared(c int) int {
	return 9*c*ighpBN + 4*(c/16)*100*16 + igemmBM*(ighpBN+16) + 8*ighpBN + 1024
}

// ighpGrid is ignhp_*'s launch: its tiles are one channel tile's 8×8-pixel
// sub-tiles of nb images of oh×ow outputs, two per block at a time (a
// warpgroup each); every block keeps one 64-channel tile of the n output
// channels, so the grid is a whole number of blocks per channel tile, as
// many as fit the SMs at once (blocks per SM, fewer where shared bytes a
// block allow fewer: C = 128 takes 134 KB, one block).
func ighpGrid(nb, oh, ow int, n int64, shared, blocks, sms int) (tiles int64, grid uint32, err error) {
	nN := (n + ighpBN - 1) / ighpBN
	tiles = int64(nb) * int64((oh+7)/8) * int64((ow+7)/8)
	fit := int64(min(blocks, 227*1024/(shared+1024)))
	per := min((tiles+1)/2, fit*int64(sms)/nN)
	if tiles > 1<<31-1 || per < 1 {
		return 0, 0, fmt.Errorf("persistent halo GEMM: %d sub-tiles, %d channel tiles", tiles, nN)
	}
	return tiles, uint32(per * nN), nil
}

// persistLowers says why the persistent wgmma kernels (wgmmap.cu) do not
// take a layer: they write 8-bit outputs only (int8, uint8 or E4M3 codes)
// and read a residual only as codes.
func persistLowers(p gemmParams) error {
	switch p.Out {
	case ir.Int8, ir.Uint8, ir.Float8E4M3FN:
	default:
		return fmt.Errorf("the persistent wgmma NHWC kernels write 8-bit codes (%s)", p.Out)
	}
	if p.HasZ && p.ZFmt < zfmtCodes {
		return fmt.Errorf("the persistent wgmma NHWC kernels read residuals as codes (format %d)", p.ZFmt)
	}
	if p.Deep && p.HasZ {
		return fmt.Errorf("the 3-stage 128-channel kernels (ignr_*) stage their codes where a residual would go: layers without one only")
	}
	if p.Halo {
		if p.HasZ {
			return fmt.Errorf("the halo-tile kernels (ignh_*) take layers without a residual")
		}
		if p.KH != 3 || p.KW != 3 || p.SH != 1 || p.SW != 1 || p.DH != 1 || p.DW != 1 || p.AutoPad != "" || p.PH != 1 || p.PW != 1 {
			return fmt.Errorf("the halo-tile kernels (ignh_*) take 3×3 stride-1 convolutions padded by 1 (%d×%d/%d,%d pads %d,%d %q)", p.KH, p.KW, p.SH, p.SW, p.PH, p.PW, p.AutoPad)
		}
		if p.KWX > 0 {
			return fmt.Errorf("the halo-tile kernels (ignh_*) read the input itself, not its kernel-width expansion")
		}
		if c := p.K / 9; c%32 != 0 { // a tap's reduction runs in 32-byte wgmma steps
			return fmt.Errorf("the halo-tile kernels (ignh_*) need input channels in multiples of 32 bytes (%d)", c)
		}
		if c := p.K / 9; p.Persist && c != 32 && c != 64 && c != 128 {
			// every tap's weights stay in shared memory, and C is the kernel's template argument
			return fmt.Errorf("the persistent halo kernel (ignhp*_*) takes 32, 64 or 128 input channels (%d)", c)
		}
	}
	return nil
}

// fp8MMA offers the FP8-MMA NHWC tactics (implicit_nhwc.f8 / .x3f8) for
// E4M3 convolutions. Their f32 accumulation is the tensor cores' FP8 one,
// not exact (like cuBLASLt's FP8 GEMMs): the FP8 engine then differs from
// the CPU engine by rounding where the timer picks them.
// KILN_CUDA_FP8MMA=0 (or SetFP8MMA(false)) keeps the exact widening kernels.
// KILN_CUDA_FP8MMA=only (or SetFP8MMAOnly(true)) offers them alone where
// they lower, so that E4M3 layers run on the FP8 tensor cores whatever the
// build's timing says.
var fp8MMA, fp8MMAOnly atomic.Bool

func init() {
	fp8MMA.Store(os.Getenv("KILN_CUDA_FP8MMA") != "0")
	fp8MMAOnly.Store(os.Getenv("KILN_CUDA_FP8MMA") == "only")
}

// haloTiles offers the halo-tile 3×3 kernels (implicit_nhwc.wgh/.wghq,
// wgmmah.cu). They are correct (the GPU tests run them) but not faster:
// on the H200 at batch 256 they tied the im2col wgmma kernels at 128
// channels and lost at 64 and 256+, while the build's timing at batch 16
// sometimes picked them (res5's 3×3 0.26 ms against 0.11). Off unless
// KILN_CUDA_HALO=1 (or SetHaloTiles(true)).
var haloTiles atomic.Bool

func init() { haloTiles.Store(os.Getenv("KILN_CUDA_HALO") == "1") }

// SetHaloTiles offers the halo-tile 3×3 kernels to later builds (or not).
func SetHaloTiles(on bool) { haloTiles.Store(on) }

// SetFP8MMA turns the FP8-MMA NHWC tactics on or off for later builds.
func SetFP8MMA(on bool) { fp8MMA.Store(on) }

// SetFP8MMAOnly makes later builds offer the FP8-MMA NHWC tactics alone for
// the E4M3 convolutions they lower (while SetFP8MMA is on).
func SetFP8MMAOnly(on bool) { fp8MMAOnly.Store(on) }

// nhwcTactics are the channels-last tactics offered for a convolution the
// NHWC implicit GEMM lowers: its 2- and 3-blocks-per-SM kernels, the
// kernel-width expansion of each where the layer has few channels
// (kwExpandChannels), the FP8-MMA kernels for E4M3 (fp8MMA), the wgmma
// kernels (wgmma.cu) for int8 and, with the FP8-MMA ones, E4M3, and
// cuBLASLt for 16-bit 1×1 convolutions. All read and write channels-last
// activations, so the timer may pick any of them.
func nhwcTactics(l *engine.Layer) []engine.Tactic {
	var tacs []engine.Tactic
	add := func(name, mode string) {
		if _, err := lowerGemm(l, mode); err == nil {
			tacs = append(tacs, gemmTactic(name, mode))
		}
	}
	_, err := lowerGemm(l, modeNHWCF8)
	f8 := err == nil && fp8MMA.Load()
	if !f8 || !fp8MMAOnly.Load() {
		add("implicit_nhwc", modeNHWC)
		add("implicit_nhwc.x3", modeNHWC3)
		add("implicit_nhwc.kw", modeNHWC+kwSuffix)
		add("implicit_nhwc.x3kw", modeNHWC3+kwSuffix)
	}
	if f8 {
		add("implicit_nhwc.f8", modeNHWCF8)
		add("implicit_nhwc.x3f8", modeNHWC3F8)
		add("implicit_nhwc.f8kw", modeNHWCF8+kwSuffix)
		add("implicit_nhwc.x3f8kw", modeNHWC3F8+kwSuffix)
	}
	// the wgmma kernels, each with the fast epilogue where it lowers
	// (fastepi.go) instead of the exact one
	addWG := func(name, mode string) {
		if !exactEpilogue.Load() {
			if _, err := lowerGemm(l, mode+fastSuffix); err == nil {
				tacs = append(tacs, gemmTactic(name+fastTacticSuffix, mode+fastSuffix))
				return
			}
		}
		add(name, mode)
	}
	if in, _ := computeType(l.In[0].DType); in == cuda.R8I || f8 { // E4M3 on wgmma is FP8 accumulation: with the FP8-MMA ones
		addWG("implicit_nhwc.wg", modeNHWCWG)
		addWG("implicit_nhwc.x3wg", modeNHWC3WG)
		addWG("implicit_nhwc.wgkw", modeNHWCWG+kwSuffix)
		addWG("implicit_nhwc.x3wgkw", modeNHWC3WG+kwSuffix)
		addWG("implicit_nhwc.wgp", modeNHWCWGP)
		addWG("implicit_nhwc.wgpkw", modeNHWCWGP+kwSuffix)
		addWG("implicit_nhwc.wgq", modeNHWCWGQ)
		addWG("implicit_nhwc.wgr", modeNHWCWGR)
		addWG("implicit_nhwc.wghp", modeNHWCWGHP)
		if haloTiles.Load() {
			addWG("implicit_nhwc.wgh", modeNHWCWGH)
			addWG("implicit_nhwc.wghq", modeNHWCWGHQ)
		}
	}
	add("cublaslt.nhwc", modeGemmNHWC)
	if only := tacticOnly.Load(); only != nil {
		for _, t := range tacs {
			if t.Name() == *only {
				return []engine.Tactic{t}
			}
		}
	}
	return tacs
}

// tacticOnly, when set, makes nhwcTactics offer only the tactic of that
// name where it lowers, so that a build has one kernel to time and run
// (gpu_bench -conv -tactic, for profiling a kernel alone); layers it does
// not lower keep all their tactics.
var tacticOnly atomic.Pointer[string]

// OfferOnly restricts the channels-last convolution tactics of later
// builds to the one named, where it lowers; "" offers them all again.
func OfferOnly(name string) {
	if name == "" {
		tacticOnly.Store(nil)
		return
	}
	tacticOnly.Store(&name)
}

// kwExpandChannels is the channel count of a convolution's input expanded
// along the kernel width (kiln.cu kwexpand_*): KW·C rounded up to whole
// 16-byte chunks, or an error where the expansion does not shorten the
// reduction (the channels already fill whole chunks, or KW is 1, or the
// expanded row is no shorter than KW padded pixels).
func kwExpandChannels(p gemmParams, in cuda.DataType) (int64, error) {
	c := p.K / int64(p.KH*p.KW)
	if p.KW < 2 || nhwcChannels(c, in) == c {
		return 0, fmt.Errorf("kernel-width expansion is for layers whose few channels are padded to a chunk (C %d, KW %d)", c, p.KW)
	}
	cx := nhwcChannels(int64(p.KW)*c, in)
	if cx >= int64(p.KW)*nhwcChannels(c, in) {
		return 0, fmt.Errorf("kernel-width expansion saves nothing (C %d, KW %d)", c, p.KW)
	}
	return cx, nil
}

// kwExpandWeights reorders logical [N, C·KH·KW] convolution weights in
// ONNX's (c, kh, kw) order to [N, KH·cx] for the expanded input: column
// kh·cx + kw·C + c, zeros from KW·C to cx.
func kwExpandWeights(w *ir.Tensor, kh, kw int, cx int64) *ir.Tensor {
	n, k := w.Dims[0], w.Dims[1]
	c := k / int64(kh*kw)
	esz := w.DType.ByteSize(1)
	o := ir.NewTensor(w.DType, []int64{n, int64(kh) * cx})
	for r := int64(0); r < n; r++ {
		for ci := int64(0); ci < c; ci++ {
			for y := int64(0); y < int64(kh); y++ {
				for x := int64(0); x < int64(kw); x++ {
					src := (r*k + (ci*int64(kh)+y)*int64(kw) + x) * esz
					dst := (r*int64(kh)*cx + y*cx + x*c + ci) * esz
					copy(o.Data[dst:dst+esz], w.Data[src:src+esz])
				}
			}
		}
	}
	return o
}

// nhwcLowers says why the channels-last implicit GEMM cannot run a
// convolution (nil when it can): one group, 16-bit float or int8 input
// whose channels fill whole 16-byte chunks, output channels in groups of 8
// (vector stores), an output type the kernel writes.
//
// A matrix product (Gemm, MatMul and their kiln forms) runs as a 1×1
// convolution over its rows (lowerGemm sets that geometry, Run gives it
// M pixels of K channels): only with a 2D input, whose device copy is
// layout-free (layoutMatters), and whose rows fill whole 16-byte chunks
// (no channel padding: padNHWC takes 4D tensors).
func nhwcLowers(p gemmParams, in cuda.DataType, l *engine.Layer) error {
	if !p.Conv {
		if !l.In[0].HasShape || len(l.In[0].Shape) != 2 {
			return fmt.Errorf("the NHWC implicit GEMM takes matrix products of a 2D input only (a 4D one would be taken for an NCHW activation)")
		}
		if per := 16 / in.Size(); p.K%per != 0 {
			return fmt.Errorf("the NHWC implicit GEMM needs a matrix product's K in multiples of %d (%d)", per, p.K)
		}
	}
	if p.Groups > 1 {
		return fmt.Errorf("the NHWC implicit GEMM takes ungrouped convolutions")
	}
	if l.In[0].DType == ir.Uint8 {
		return fmt.Errorf("the NHWC implicit GEMM takes no uint8 input")
	}
	if ignName(in, p.Out) == "" {
		return fmt.Errorf("the NHWC implicit GEMM takes float16/bfloat16/int8 input (%s → %s)", l.In[0].DType, p.Out)
	}
	khw := int64(p.KH * p.KW)
	c := p.K / khw
	if per := 16 / in.Size(); nhwcChannels(c, in)%per != 0 {
		return fmt.Errorf("the NHWC implicit GEMM needs channels in multiples of %d (%d)", per, c)
	}
	if p.N%8 != 0 {
		return fmt.Errorf("the NHWC implicit GEMM needs output channels in multiples of 8 (%d)", p.N)
	}
	return nil
}

// nhwcChannels is the channel count the NHWC implicit GEMM runs a layer
// with c input channels at: c rounded up to whole 16-byte chunks (a
// network's first layer's 3 channels, mobilenetv2's 24 int8 channels):
// the input is padded with zero channels on the way in, the weights with
// zero columns.
func nhwcChannels(c int64, in cuda.DataType) int64 {
	return roundUp(c, 16/in.Size())
}

// padChannels widens logical [N, C·KH·KW] weights in (c, kh, kw) order to
// cpad channels, the new ones zero.
func padChannels(w *ir.Tensor, khw int, cpad int64) *ir.Tensor {
	n, k := w.Dims[0], w.Dims[1]
	esz := w.DType.ByteSize(1)
	o := ir.NewTensor(w.DType, []int64{n, cpad * int64(khw)})
	for r := int64(0); r < n; r++ {
		copy(o.Data[r*cpad*int64(khw)*esz:], w.Data[r*k*esz:(r+1)*k*esz])
	}
	return o
}

// nhwcOutput says whether an NCHW-input convolution with this output type
// and channel count should write its device-only output NHWC: when the
// NHWC implicit GEMM could read it.
func nhwcOutput(out ir.DType, channels int64) bool {
	switch out {
	case ir.Float16, ir.BFloat16:
		return channels%8 == 0
	case ir.Int8, ir.Float8E4M3FN:
		return channels%16 == 0
	}
	return false
}

// ignName is the NHWC kernel for an input and output type ("" if none).
func ignName(in cuda.DataType, out ir.DType) string {
	var i string
	switch in {
	case cuda.R16F:
		i = "f16"
	case cuda.R16BF:
		i = "bf16"
	case cuda.R8I:
		i = "i8"
	case cuda.R8FE4M3:
		i = "e4m3"
	default:
		return ""
	}
	switch out {
	case ir.Float32:
		return "ign_" + i + "_f32"
	case ir.Float16, ir.BFloat16:
		return "ign_" + i + "_16"
	case ir.Float8E4M3FN:
		if i != "e4m3" {
			return ""
		}
		return "ign_e4m3_e4m3"
	case ir.Int8, ir.Uint8:
		if i != "i8" {
			return ""
		}
		return "ign_i8_" + map[ir.DType]string{ir.Int8: "i8", ir.Uint8: "u8"}[out]
	}
	return ""
}

// ignKernel is the NHWC kernel of a lowered layer: ignName's, or its
// 3-blocks (ign3_*) and FP8-MMA (ignf_*, ign3f_*) variants.
func ignKernel(p gemmParams) string {
	prefix := "ign"
	switch {
	case p.Halo:
		prefix += "h"
		if p.Wide {
			prefix += "q"
		}
		if p.Persist { // ignhp1_*, ignhp2_*, ignhp4_*: C/32
			prefix += "p" + strconv.Itoa(int(p.K/9/32))
		}
	case p.Deep:
		prefix += "r"
	case p.Wide:
		prefix += "q"
	case p.Persist:
		prefix += "p"
	case p.WG:
		prefix += "w"
	}
	if p.Blocks3 {
		prefix += "3"
	}
	if p.F8MMA {
		prefix += "f"
	}
	return prefix + "_" + strings.TrimPrefix(ignName(p.In, p.Out), "ign_")
}

// khwcOrder reorders the columns of logical [N, C·KH·KW] convolution
// weights from ONNX's (c, kh, kw) to (kh, kw, c): the reduction order of
// the NHWC implicit GEMM, in which each input pixel's channels are
// contiguous.
func khwcOrder(w *ir.Tensor, khw int) *ir.Tensor {
	n, k := w.Dims[0], w.Dims[1]
	c := k / int64(khw)
	esz := w.DType.ByteSize(1)
	o := ir.NewTensor(w.DType, []int64{n, k})
	for r := int64(0); r < n; r++ {
		for ci := int64(0); ci < c; ci++ {
			for s := int64(0); s < int64(khw); s++ {
				src := (r*k + ci*int64(khw) + s) * esz
				dst := (r*k + s*c + ci) * esz
				copy(o.Data[dst:dst+esz], w.Data[src:src+esz])
			}
		}
	}
	return o
}

// stageNHWC reserves arena room and puts a channels-last conv's operands on
// the device: the input (zero-padded to CPad channels with pad), the
// residual, the output (marked NHWC unless the host reads it, in which case
// tmp is scratch for the NHWC result before its relayout), then marks the
// step's inputs ready.
//
// Layers with KWX get the input expanded along the kernel width instead
// (pw, ow: the layer's left padding and output width).
func (k *gemmKernel) stageNHWC(g *device, st *execState, in, out []*ir.Tensor, pad, toHost bool, pw, ow int, mark func(int) error) (dX, dZ, dY, tmp cuda.DevPtr, err error) {
	X, Y := in[0], out[0]
	need := alignUp(int64(len(X.Data)))
	if k.p.HasZ {
		need += alignUp(int64(len(in[1].Data)))
	}
	if toHost {
		need += alignUp(int64(len(Y.Data)))
	}
	if err = st.reserve(g, need); err != nil {
		return
	}
	if pad && k.p.KWX > 0 {
		dX, err = st.expandKW(g, X, k.onDevice(0), k.p, pw, ow)
	} else if pad && k.p.CPad > 0 {
		dX, err = st.padNHWC(g, X, k.onDevice(0), int(k.p.CPad))
	} else {
		dX, err = st.inputAs(g, X, k.onDevice(0), true)
	}
	if err != nil {
		return
	}
	if k.p.HasZ {
		if dZ, err = st.inputAs(g, in[1], k.onDevice(1), true); err != nil {
			return
		}
	}
	if toHost && layoutMatters(Y.Dims) {
		tmp = st.take(int64(len(Y.Data)))
	}
	if dY, err = st.residentFor(g, Y); err != nil {
		return
	}
	st.setNHWC(Y, !toHost)
	err = mark(1)
	return
}

// runNHWC is the implicit_nhwc tactic: X (and the residual) in NHWC, Y
// written NHWC; when the host reads Y, into arena scratch first and then
// relaid out to NCHW.
func (k *gemmKernel) runNHWC(x *engine.Exec, in, out []*ir.Tensor, nb, c, h, w, oh, ow int) error {
	Y := out[0]
	toHost := k.toHost(0)
	return step(x, in, out, func(g *device, st *execState, mark func(int) error) (bool, error) {
		name, shared, fn := ignKernel(k.p), ignShared, g.igemmFn
		blocks := 2 // per SM, as the kernels' launch bounds say
		if k.p.Blocks3 {
			shared, blocks = ign3Shared, 3
		}
		if k.p.WG {
			shared, fn = ignwShared, g.wgemmFn
			if k.p.Blocks3 {
				shared = ignw3Shared
			}
			if k.p.Persist {
				shared = ignpShared
			}
			if k.p.Wide {
				shared = ignqShared
			}
			if k.p.Deep {
				shared = ignrShared
			}
			if k.p.Halo {
				shared = map[bool]int{false: ighShared, true: ighqShared}[k.p.Wide]
				if k.p.Persist {
					shared = ighpShared(int(k.p.K / 9)) // input channels padded to whole chunks
				}
			}
		}
		f, err := fn(name)
		if err != nil {
			return false, err
		}
		cin := c
		if k.p.CPad > 0 {
			cin = int(k.p.CPad)
		}
		if err := f.SetMaxDynamicShared(shared); err != nil {
			return false, err
		}
		ph, pw := k.p.pads(h, w, oh, ow)
		dX, dZ, dY, tmp, err := k.stageNHWC(g, st, in, out, true, toHost, pw, ow, mark)
		if err != nil {
			return false, err
		}
		ys, zp := k.p.outQuant()
		cb, err := k.codeBounds()
		if err != nil {
			return false, err
		}
		act, vlo, vhi := cb.act, cb.vlo, cb.vhi
		zs := k.p.ZScale
		if k.p.Fast { // fastepi.go: bounds in code units, the residual scale over ys
			act, vlo, vhi = fastBounds(k.p)
			zs /= ys
		}
		M := int64(nb) * int64(oh) * int64(ow)
		dst := dY
		if tmp != 0 {
			dst = tmp
		}
		bn := int64(igemmBN)
		if k.p.Wide {
			bn = 128
		}
		tiles := (M + igemmBM - 1) / igemmBM * ((k.p.N + bn - 1) / bn)
		if tiles > 1<<31-1 {
			return false, fmt.Errorf("implicit GEMM: %d tiles", tiles)
		}
		if k.p.Halo { // 16×8-pixel tiles of one image (wgmmah.cu)
			tiles = int64(nb) * int64((oh+15)/16) * int64((ow+7)/8) * ((k.p.N + bn - 1) / bn)
			if tiles > 1<<31-1 {
				return false, fmt.Errorf("halo-tile GEMM: %d tiles", tiles)
			}
		}
		grid := [3]uint32{uint32(tiles), 1, 1} // 1D, channel tiles fastest (igemm.cu)
		if k.p.Persist {                       // as many blocks as fit at once, each looping over tiles
			grid[0] = uint32(min(tiles, int64(blocks*g.d.SMs)))
		}
		if k.p.Halo && k.p.Persist {
			var g0 uint32
			if tiles, g0, err = ighpGrid(nb, oh, ow, k.p.N, shared, blocks, g.d.SMs); err != nil {
				return false, err
			}
			grid[0] = g0
		}
		gn, gh, gw, goh, gow := nb, h, w, oh, ow
		kw, sw, gpw, dw := k.p.KW, k.p.SW, pw, k.p.DW
		if k.p.KWX > 0 { // a KH×1 conv over the expanded input [N][H][OW][KWX]
			cin, gw, kw, sw, gpw, dw = int(k.p.KWX), ow, 1, 1, 0, 1
		}
		if k.p.KH == 1 && k.p.KW == 1 && k.p.SH == 1 && k.p.SW == 1 && ph == 0 && pw == 0 && oh == h && ow == w && M <= 1<<31-1 {
			// a plain GEMM over pixels: ign_body skips the pixel → (n, oh, ow) divisions
			gn, gh, gw, goh, gow = int(M), 1, 1, 1, 1
		}
		args := cuda.NewArgs(dX, k.W, dst, gn, cin, gh, gw, goh, gow, kw, k.p.SH, sw, ph, gpw, k.p.DH, dw,
			int(k.p.Kp), int(k.p.K), int(k.p.N), k.scale, k.bias, dZ, k.p.ZFmt, zs, k.p.ZZero, act, k.p.ActA, k.p.ActB,
			ys, 1/ys, zp, vlo, vhi) // 1/ys: RN(1/ys) for igemm.cu's qdivr
		if k.p.Persist || k.p.Halo {
			args.Add(int(tiles)) // ignp_*'s and ignh_*'s last argument
		}
		if err := f.Launch(st.s, grid, block256, uint32(shared), args); err != nil {
			return false, err
		}
		if tmp != 0 {
			esz := Y.DType.ByteSize(1)
			args := cuda.NewArgs(tmp, dY, nb, int(k.p.N), oh*ow, 0)
			if err := launch1(g, st, relayoutName[esz], Y.Len(), args); err != nil {
				return false, err
			}
		}
		if err := mark(2); err != nil {
			return false, err
		}
		return k.finish(st, out, []cuda.DevPtr{dY})
	})
}

// gemmNHWCLowers says why a convolution is not a plain GEMM on
// channels-last activations for cuBLASLt (nil when it is): 1×1, stride 1,
// no padding, one group, float16/bfloat16 in and out, channel counts
// multiples of 8 (16-byte leading dimensions).
func gemmNHWCLowers(p gemmParams, in cuda.DataType, quant bool, n *ir.Node) error {
	if !p.Conv || p.Groups > 1 || quant || p.KH != 1 || p.KW != 1 || p.SH != 1 || p.SW != 1 || p.AutoPad != "" {
		return fmt.Errorf("the NHWC cuBLASLt GEMM takes ungrouped 1×1 stride-1 float convolutions")
	}
	if pd, _ := n.AttrInts("pads", []int64{0, 0, 0, 0}); len(pd) != 4 || pd[0] != 0 || pd[1] != 0 || pd[2] != 0 || pd[3] != 0 {
		return fmt.Errorf("the NHWC cuBLASLt GEMM takes unpadded convolutions")
	}
	if (in != cuda.R16F && in != cuda.R16BF) || irType(in) != p.Out {
		return fmt.Errorf("the NHWC cuBLASLt GEMM takes float16/bfloat16 in and out")
	}
	if p.K%8 != 0 || p.N%8 != 0 {
		return fmt.Errorf("the NHWC cuBLASLt GEMM needs channels in multiples of 8 (%d → %d)", p.K, p.N)
	}
	return nil
}

// bias16 is a float32 bias in a 16-bit output type (cuBLASLt's bias
// epilogue reads the output's type; the rounding is the only difference
// from the other tactics, which add the float32 bias).
func bias16(b *ir.Tensor, out ir.DType) []byte {
	o := make([]byte, 2*len(b.F32()))
	for i, v := range b.F32() {
		h := floatx.F32ToF16(v)
		if out == ir.BFloat16 {
			h = floatx.F32ToBF16(v)
		}
		binary.LittleEndian.PutUint16(o[2*i:], h)
	}
	return o
}

func (k *gemmKernel) nhwcGemmPlan(g *device, m int64) (*cuda.Gemm, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if gp := k.plans[m]; gp != nil {
		return gp, nil
	}
	gp, err := g.blas.Plan(cuda.GemmDesc{M: m, N: k.p.N, K: k.p.K, LdX: k.p.K, LdW: k.p.Kp, LdY: k.p.N, In: k.p.In, Out: k.p.In,
		Bias: k.bias, Relu: k.p.Act == actCodes["Relu"], Residual: k.p.HasZ}, workspaceBytes) // other activations: runGemmNHWC's pass
	if err != nil {
		return nil, err
	}
	k.plans[m] = gp
	return gp, nil
}

// runGemmNHWC is the cublaslt.nhwc tactic: Y[pixels×N] = act(X[pixels×K] ·
// Wᵀ + bias + Z), all channels-last, in one cuBLASLt call; when the host
// reads Y, into arena scratch first and then relaid out to NCHW.
func (k *gemmKernel) runGemmNHWC(x *engine.Exec, in, out []*ir.Tensor, nb, oh, ow int) error {
	Y := out[0]
	toHost := k.toHost(0)
	M := int64(nb) * int64(oh) * int64(ow)
	return step(x, in, out, func(g *device, st *execState, mark func(int) error) (bool, error) {
		gp, err := k.nhwcGemmPlan(g, M)
		if err != nil {
			return false, err
		}
		dX, dZ, dY, tmp, err := k.stageNHWC(g, st, in, out, false, toHost, 0, 0, mark)
		if err != nil {
			return false, err
		}
		dst := dY
		if tmp != 0 {
			dst = tmp
		}
		if err := gp.RunC(st.blas, st.s, dX, k.W, dZ, dst, st.ws, workspaceBytes); err != nil {
			return false, err
		}
		if k.p.Act != actCodes[""] && k.p.Act != actCodes["Relu"] { // e.g. ReLU6: an in-place pass after the bias and residual
			n, bf := Y.Len(), b2i(k.p.Out == ir.BFloat16)
			var err error
			if n%8 == 0 { // 16-byte vectors (no bias: the channel count is irrelevant)
				err = launch1(g, st, "bias_act_nchw16x8", n/8, cuda.NewArgs(dst, n/8, 1, 1, cuda.DevPtr(0), k.p.Act, k.p.ActA, k.p.ActB, bf))
			} else {
				err = launch1(g, st, "act_f16", n, cuda.NewArgs(dst, dst, n, k.p.Act, k.p.ActA, k.p.ActB, bf))
			}
			if err != nil {
				return false, err
			}
		}
		if tmp != 0 {
			args := cuda.NewArgs(tmp, dY, nb, int(k.p.N), oh*ow, 0)
			if err := launch1(g, st, relayoutName[2], Y.Len(), args); err != nil {
				return false, err
			}
		}
		if err := mark(2); err != nil {
			return false, err
		}
		return k.finish(st, out, []cuda.DevPtr{dY})
	})
}

// depthwiseNHWC says whether a grouped convolution is one that the direct
// tactic runs as dw_nhwc8_* on channels-last input (runDirect): depthwise
// (groups = C = N, one input channel per group), C % 8 == 0, 16-bit float,
// int8, uint8 or E4M3 input.
func depthwiseNHWC(l *engine.Layer, groups int64) bool {
	w := l.Const[1]
	if w == nil || w.Rank() != 4 || w.Dims[0] != groups || w.Dims[1] != 1 || groups%8 != 0 || l.In[0] == nil {
		return false
	}
	switch l.In[0].DType {
	case ir.Float16, ir.BFloat16, ir.Int8, ir.Uint8, ir.Float8E4M3FN:
		return true
	}
	return false
}

// tapMajor uploads (once) a depthwise layer's weights tap-major, [KH·KW][N]
// in the packed weights' type, for dw_nhwc8_*: each tap's 8 channels are
// one vector load.
func (k *gemmKernel) tapMajor() (cuda.DevPtr, error) {
	k.upMu.Lock()
	defer k.upMu.Unlock()
	if k.wtap != 0 {
		return k.wtap, nil
	}
	packed := k.host[0]
	esz := k.p.In.Size()
	taps := int64(k.p.KH * k.p.KW)
	b := make([]byte, taps*k.p.N*esz)
	for c := int64(0); c < k.p.N; c++ {
		for t := int64(0); t < taps; t++ {
			copy(b[(t*k.p.N+c)*esz:(t*k.p.N+c+1)*esz], packed.Data[(c*k.p.Kp+t)*esz:(c*k.p.Kp+t+1)*esz])
		}
	}
	p, err := k.w.upload(b)
	if err != nil {
		return 0, err
	}
	k.wtap = p
	return p, nil
}

// codeRange is the code range of an integer output type.
func codeRange(t ir.DType) (lo, hi int, ok bool) {
	switch t {
	case ir.Int8:
		return -128, 127, true
	case ir.Uint8:
		return 0, 255, true
	}
	return 0, 0, false
}

// codeClamp gives the NHWC epilogue's bounds for integer codes (nhwc.cuh
// qcodew): vlo, the least float32 v whose quotient RN(v/ys), rounded to an
// integer (ties to even), is at least a, and vhi, the greatest whose is at
// most b (a = lo − zp, b = hi − zp). The quotient is monotone in v, so for
// v clamped to [vlo, vhi] the rounded quotient is already in [a, b] and
// equals the saturated code of the unclamped v. Float32 division here is
// the correctly rounded quotient that qdivr computes on the GPU.
func codeClamp(ys float32, a, b int) (vlo, vhi float32, err error) {
	if !(ys >= 0x1p-40 && ys <= 0x1p40) || a > b {
		return 0, 0, fmt.Errorf("code bounds for y_scale %g, codes [%d, %d]", ys, a, b)
	}
	code := func(v float32) float64 { return math.RoundToEven(float64(v / ys)) }
	up := func(v float32) float32 { return math.Nextafter32(v, float32(math.Inf(1))) }
	down := func(v float32) float32 { return math.Nextafter32(v, float32(math.Inf(-1))) }
	// start within an ulp of the boundaries ((a − ½)·ys, (b + ½)·ys) and step
	vlo, vhi = float32((float64(a)-0.5)*float64(ys)), float32((float64(b)+0.5)*float64(ys))
	for i := 0; ; i++ {
		if i == 64 {
			return 0, 0, fmt.Errorf("code bounds for y_scale %g did not converge", ys)
		}
		switch {
		case code(vlo) < float64(a):
			vlo = up(vlo)
		case code(down(vlo)) >= float64(a):
			vlo = down(vlo)
		case code(vhi) > float64(b):
			vhi = down(vhi)
		case code(up(vhi)) <= float64(b):
			vhi = up(vhi)
		default:
			return vlo, vhi, nil
		}
	}
}
