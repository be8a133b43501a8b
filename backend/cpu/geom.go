package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/pack"
)

// window is a 2-D sliding window's attributes as written on the node
// (pads are resolved per input size at run time: auto_pad depends on it).
type window struct {
	Kernel  [2]int `json:"kernel"`
	Strides [2]int `json:"strides"`
	Dils    [2]int `json:"dils"`
	Pads    [4]int `json:"pads"` // top, left, bottom, right
	AutoPad string `json:"auto_pad,omitempty"`
	Ceil    bool   `json:"ceil,omitempty"`
}

// readWindow reads a 2-D window's attributes; kernel comes from W's dims
// for convolutions (kernel_shape for pools).
func readWindow(n *ir.Node, kernel []int64, useDil bool) (window, error) {
	var w window
	if len(kernel) != 2 {
		return w, fmt.Errorf("%s: only 2-D windows have fast kernels", n)
	}
	ints := func(name string, def []int64) ([]int64, error) {
		v, err := n.AttrInts(name, def)
		if err == nil && len(v) == 0 {
			v = def
		}
		return v, err
	}
	st, err := ints("strides", []int64{1, 1})
	if err != nil {
		return w, err
	}
	dl := []int64{1, 1}
	if useDil {
		if dl, err = ints("dilations", dl); err != nil {
			return w, err
		}
	}
	pd, err := ints("pads", []int64{0, 0, 0, 0})
	if err != nil {
		return w, err
	}
	if w.AutoPad, err = n.AttrString("auto_pad", "NOTSET"); err != nil {
		return w, err
	}
	ceil, err := n.AttrInt("ceil_mode", 0)
	if err != nil {
		return w, err
	}
	w.Ceil = ceil != 0
	if len(st) != 2 || len(dl) != 2 || len(pd) != 4 {
		return w, fmt.Errorf("%s: strides/dilations/pads of the wrong length", n)
	}
	switch w.AutoPad {
	case "NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER":
	default:
		return w, fmt.Errorf("%s: unknown auto_pad %q", n, w.AutoPad)
	}
	for i := 0; i < 2; i++ {
		w.Kernel[i], w.Strides[i], w.Dils[i] = int(kernel[i]), int(st[i]), int(dl[i])
		if w.Kernel[i] <= 0 || w.Strides[i] <= 0 || w.Dils[i] <= 0 {
			return w, fmt.Errorf("%s: kernel, strides and dilations must be positive", n)
		}
	}
	for i := range pd {
		if pd[i] < 0 {
			return w, fmt.Errorf("%s: negative pads", n)
		}
		w.Pads[i] = int(pd[i])
	}
	return w, nil
}

// resolve computes begin pads and the output size of one axis as ops/nn
// does (ceil mode with the pooling rule that drops windows starting in the
// right padding).
func (w *window) resolve(axis, in int) (padB, out int, err error) {
	k, s, d := w.Kernel[axis], w.Strides[axis], w.Dils[axis]
	eff := (k-1)*d + 1
	switch w.AutoPad {
	case "SAME_UPPER", "SAME_LOWER":
		o := (in + s - 1) / s
		need := max(0, (o-1)*s+eff-in)
		if w.AutoPad == "SAME_UPPER" {
			return need / 2, o, nil
		}
		return need - need/2, o, nil
	case "VALID":
		if in < eff {
			return 0, 0, fmt.Errorf("input size %d is smaller than the dilated kernel %d", in, eff)
		}
		return 0, (in-eff)/s + 1, nil
	}
	pb, pe := w.Pads[axis], w.Pads[axis+2]
	span := in + pb + pe - eff
	if span < 0 {
		return 0, 0, fmt.Errorf("padded input size %d is smaller than the dilated kernel %d", in+pb+pe, eff)
	}
	if w.Ceil {
		o := (span+s-1)/s + 1
		if (o-1)*s >= in+pb {
			o--
		}
		return pb, o, nil
	}
	return pb, span/s + 1, nil
}

// padEnd is the end pad of one axis for input size in (auto_pad aware).
func (w *window) padEnd(axis, in int) int {
	k, s, d := w.Kernel[axis], w.Strides[axis], w.Dils[axis]
	switch w.AutoPad {
	case "SAME_UPPER", "SAME_LOWER":
		o := (in + s - 1) / s
		need := max(0, (o-1)*s+(k-1)*d+1-in)
		pb, _, _ := w.resolve(axis, in)
		return need - pb
	case "VALID":
		return 0
	}
	return w.Pads[axis+2]
}

// geometry resolves a conv (or pool, with m = c, group = c) for NCHW input dims.
func (w *window) geometry(xd []int64, m, group int) (pack.Conv2D, error) {
	g := pack.Conv2D{KH: w.Kernel[0], KW: w.Kernel[1], SH: w.Strides[0], SW: w.Strides[1],
		DH: w.Dils[0], DW: w.Dils[1], M: m, Group: group}
	if len(xd) != 4 {
		return g, fmt.Errorf("input has rank %d, want 4 (NCHW)", len(xd))
	}
	g.C, g.H, g.W = int(xd[1]), int(xd[2]), int(xd[3])
	var err error
	if g.PT, g.OH, err = w.resolve(0, g.H); err != nil {
		return g, err
	}
	if g.PL, g.OW, err = w.resolve(1, g.W); err != nil {
		return g, err
	}
	return g, nil
}
