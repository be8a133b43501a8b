package cudabackend

import (
	"fmt"
	"os"
	"sync/atomic"

	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
)

// Channels-last activations between GPU steps. Engine tensors are NCHW;
// the device copy of a 4D activation that only CUDA steps read may hold it
// NHWC instead, which the NHWC implicit GEMM (implicit_nhwc tactic) reads
// with 16-byte copies and writes with vector stores. The layout is a
// run-time property of each device copy (execState.nhwc, keyed like
// resident): every step that writes a device copy says which layout it
// wrote (residentFor resets it to NCHW, setNHWC marks NHWC), and every
// reader either handles both (pooling, the direct convolution, elementwise
// ops that keep the layout) or gets an NCHW copy made on the fly
// (input(), relayout). Outputs the host reads are always written NCHW.
// A tensor whose H·W or C is 1 is the same in both layouts and is never
// marked.

var nhwcOn atomic.Bool

func init() { nhwcOn.Store(os.Getenv("KILN_CUDA_NHWC") != "0") }

// SetNHWC turns the channels-last convolution tactics on or off for the
// builds that follow (KILN_CUDA_NHWC=0 in the environment starts them
// off). Plans already built keep their tactics.
func SetNHWC(on bool) { nhwcOn.Store(on) }

// NHWC reports whether the channels-last tactics are offered.
func NHWC() bool { return nhwcOn.Load() }

// layoutMatters reports whether NCHW and NHWC storage of dims differ.
func layoutMatters(dims []int64) bool {
	return len(dims) == 4 && dims[1] > 1 && dims[2]*dims[3] > 1
}

type layoutSet struct {
	key  uintptr
	nhwc bool
}

// isNHWC reports whether the device copy of t holds it NHWC.
func (st *execState) isNHWC(t *ir.Tensor) bool { return st.nhwc[hostKey(t.Data)] }

// setNHWC records the layout a step wrote t's device copy in (recorded for
// graph replays, which do not run the step bodies).
func (st *execState) setNHWC(t *ir.Tensor, on bool) {
	on = on && layoutMatters(t.Dims)
	k := hostKey(t.Data)
	if on {
		st.nhwc[k] = true
	} else {
		delete(st.nhwc, k)
	}
	if st.twin {
		st.rec.layouts = append(st.rec.layouts, layoutSet{k, on})
	}
}

// relayoutName is the layout-change kernel for an element size.
var relayoutName = map[int64]string{1: "relayout_b1", 2: "relayout_b2", 4: "relayout_b4"}

// scratchFor returns the context's buffer for key (grown to n bytes).
func (st *execState) scratchFor(g *device, key uintptr, n int64) (cuda.DevPtr, error) {
	b, ok := st.conv[key]
	if ok && b.n >= n {
		return b.p, nil
	}
	if ok {
		if err := st.s.Sync(); err != nil {
			return 0, err
		}
		cuda.Free(b.p)
		st.allocGen++
	}
	p, err := g.d.Alloc(n)
	if err != nil {
		return 0, err
	}
	st.conv[key] = devBuf{p, n}
	return p, nil
}

// padNHWC returns an NHWC copy of the 4D input t with its channels
// zero-padded to cpad (the NHWC implicit GEMM's first layers).
func (st *execState) padNHWC(g *device, t *ir.Tensor, onDevice bool, cpad int) (cuda.DevPtr, error) {
	src, xn, err := st.inputRaw(g, t, onDevice)
	if err != nil {
		return 0, err
	}
	d := t.Dims
	esz := t.DType.ByteSize(1)
	n := d[0] * d[2] * d[3] * int64(cpad)
	// a key of its own: addresses are aligned, so key|1 is no tensor's
	p, err := st.scratchFor(g, hostKey(t.Data)|1, n*esz)
	if err != nil {
		return 0, err
	}
	if esz != 1 && esz != 2 {
		return 0, fmt.Errorf("channel padding of %s", t.DType)
	}
	if xn { // NHWC already: widen each pixel's channels
		name := map[int64]string{1: "padc_nhwc_b1", 2: "padc_nhwc_b2"}[esz]
		return p, launch1(g, st, name, n, cuda.NewArgs(src, p, d[0]*d[2]*d[3], int(d[1]), cpad))
	}
	name := map[int64]string{1: "pad_nhwc_b1", 2: "pad_nhwc_b2"}[esz]
	return p, launch1(g, st, name, n, cuda.NewArgs(src, p, int(d[0]), int(d[1]), int(d[2]*d[3]), cpad))
}

// expandKW returns the 4D input t expanded along the kernel width for a
// layer with gemmParams.KWX (kiln.cu kwexpand_*): [N][H][OW][KWX], read
// from either layout; pw and ow are the layer's left padding and output
// width.
func (st *execState) expandKW(g *device, t *ir.Tensor, onDevice bool, p gemmParams, pw, ow int) (cuda.DevPtr, error) {
	src, xn, err := st.inputRaw(g, t, onDevice)
	if err != nil {
		return 0, err
	}
	d := t.Dims
	esz := t.DType.ByteSize(1)
	if esz != 1 && esz != 2 {
		return 0, fmt.Errorf("kernel-width expansion of %s", t.DType)
	}
	n := d[0] * d[2] * int64(ow) * p.KWX
	// a key of its own (padNHWC's is |1): addresses are aligned
	y, err := st.scratchFor(g, hostKey(t.Data)|2, n*esz)
	if err != nil {
		return 0, err
	}
	name := map[int64]string{1: "kwexpand_b1", 2: "kwexpand_b2"}[esz]
	args := cuda.NewArgs(src, y, int(d[0]), int(d[1]), int(d[2]), int(d[3]), ow, p.KW, p.SW, pw, p.DW, int(p.KWX), b2i(xn))
	return y, launch1(g, st, name, n*esz/16, args) // a thread per 16-byte chunk (KWX fills whole chunks)
}

// relayout copies the 4D tensor t, stored at src in the other layout,
// into a buffer of the context (one per tensor) in layout toNHWC, and
// returns it.
func (st *execState) relayout(g *device, t *ir.Tensor, src cuda.DevPtr, toNHWC bool) (cuda.DevPtr, error) {
	p, err := st.scratchFor(g, hostKey(t.Data), int64(len(t.Data)))
	if err != nil {
		return 0, err
	}
	d := t.Dims
	args := cuda.NewArgs(src, p, int(d[0]), int(d[1]), int(d[2]*d[3]), b2i(toNHWC))
	return p, launch1(g, st, relayoutName[t.DType.ByteSize(1)], t.Len(), args)
}

// inputAs returns a step input's device address in the layout asked for
// (converting a copy when the producer wrote the other one, or when a
// host input should be NHWC).
func (st *execState) inputAs(g *device, t *ir.Tensor, onDevice, nhwc bool) (cuda.DevPtr, error) {
	p, cur, err := st.inputRaw(g, t, onDevice)
	if err != nil || p == 0 || cur == nhwc || !layoutMatters(t.Dims) {
		return p, err
	}
	return st.relayout(g, t, p, nhwc)
}

// inputRaw returns a step input's device address as stored and whether it
// is NHWC.
func (st *execState) inputRaw(g *device, t *ir.Tensor, onDevice bool) (cuda.DevPtr, bool, error) {
	if len(t.Data) == 0 {
		return 0, false, nil
	}
	if onDevice {
		if b, ok := st.resident[hostKey(t.Data)]; ok && b.n >= int64(len(t.Data)) {
			return b.p, st.isNHWC(t), nil
		}
		return 0, false, errMissingCopy
	}
	p := st.take(int64(len(t.Data)))
	return p, false, st.toDevice(p, t)
}
