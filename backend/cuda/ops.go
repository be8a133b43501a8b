package cudabackend

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
)

// KernelOp is the plan id of kiln's non-GEMM CUDA steps (activations,
// broadcast arithmetic, pooling, softmax, layer norm, quantize, dequantize,
// cast, and copies for Reshape-like ops, which keep tensors on the device);
// params say which.
const KernelOp = "cuda.op"

type opParams struct {
	Shape shapeSpec `json:"shape"`
	Kind  string    `json:"kind"` // act, binary, maxpool, avgpool, gavgpool, softmax, layernorm, quant, dequant, cast, copy, concat, transpose
	In    ir.DType  `json:"in"`
	Out   ir.DType  `json:"out"`
	// act
	Act        int     `json:"act,omitempty"`
	ActA, ActB float32 `json:",omitempty"`
	// binary: op code and which operand (0/1) is a constant, -1 for none
	BinOp    int `json:"bin_op,omitempty"`
	ConstArg int `json:"const_arg,omitempty"`
	// pooling
	KH, KW, SH, SW, PH, PW, DH, DW int
	CountPad                       bool   `json:",omitempty"`
	AutoPad                        string `json:",omitempty"`
	// layernorm
	Eps float32 `json:",omitempty"`
	// quant/dequant: per-axis channel = (i / Inner) % len(scales); Axis is
	// the normalized axis (-1 per tensor); concat: the normalized axis
	Axis                 int  `json:"axis"`
	HasZero, HasG, HasB2 bool `json:",omitempty"`
	// transpose: output axis i is input axis Perm[i]
	Perm []int `json:",omitempty"`
}

type opKernel struct {
	*shaper
	link
	p      opParams
	w      *devWeights
	consts []cuda.DevPtr // uploaded weights in order
	host   []*ir.Tensor
	upMu   sync.Mutex
}

func decodeOp(params []byte, weights []*ir.Tensor) (engine.Kernel, error) {
	k := &opKernel{w: &devWeights{}}
	if err := json.Unmarshal(params, &k.p); err != nil {
		return nil, err
	}
	var err error
	if k.shaper, err = k.p.Shape.decode(); err != nil {
		return nil, err
	}
	k.host = weights
	return k, nil
}

// upload copies the constants to the device on first use.
func (k *opKernel) upload() error {
	k.upMu.Lock()
	defer k.upMu.Unlock()
	if len(k.consts) == len(k.host) {
		return nil
	}
	for _, w := range k.host {
		p, err := k.w.upload(w.Data)
		if err != nil {
			return err
		}
		k.consts = append(k.consts, p)
	}
	return nil
}

func (k *opKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	if err := k.upload(); err != nil {
		return err
	}
	nin := len(in)
	if k.p.Kind == "copy" {
		nin = 1 // Reshape's shape input is read by the shape pass only
	}
	return step(x, in, out, func(g *device, st *execState, mark func(int) error) (bool, error) {
		var need int64
		for _, t := range in[:nin] {
			need += alignUp(int64(len(t.Data)))
		}
		if err := st.reserve(g, need); err != nil {
			return false, err
		}
		// layouts (layout.go): elementwise kinds keep input 0's layout,
		// pooling reads either and keeps it, the rest read NCHW
		xn := k.onDevice(0) && st.isNHWC(in[0])
		lay := k.layoutKind(in)
		yn := xn && lay != layoutNCHW && !k.toHost(0) && layoutMatters(out[0].Dims)
		din := make([]cuda.DevPtr, len(in))
		for i, t := range in[:nin] {
			var err error
			switch {
			case lay == layoutReads && i == 0:
				din[i], xn, err = st.inputRaw(g, t, k.onDevice(i))
			case lay == layoutKeeps:
				din[i], err = st.inputAs(g, t, k.onDevice(i), yn)
			default:
				din[i], err = st.input(g, t, k.onDevice(i))
			}
			if err != nil {
				return false, err
			}
		}
		dout := make([]cuda.DevPtr, len(out))
		for i, t := range out {
			var err error
			if dout[i], err = st.residentFor(g, t); err != nil {
				return false, err
			}
		}
		st.setNHWC(out[0], yn)
		if err := mark(1); err != nil {
			return false, err
		}
		if err := k.launch(g, st, in, out, din, dout, b2i(xn), b2i(yn)); err != nil {
			return false, err
		}
		if err := mark(2); err != nil {
			return false, err
		}
		return k.finish(st, out, dout)
	})
}

// How an op kernel treats the layout of its device inputs (layout.go).
const (
	layoutNCHW  = iota // reads NCHW (a relaid-out copy of an NHWC input)
	layoutKeeps        // elementwise: every input in input 0's layout, output in it too
	layoutReads        // pooling: reads input 0 in either layout, writes Y in the same (NCHW for the host)
)

func (k *opKernel) layoutKind(in []*ir.Tensor) int {
	switch k.p.Kind {
	case "act", "cast":
		return layoutKeeps
	case "quant", "dequant":
		if k.p.Axis < 0 { // per tensor: no channel index
			return layoutKeeps
		}
	case "binary":
		if k.p.ConstArg < 0 && len(in) == 2 && slices.Equal(in[0].Dims, in[1].Dims) {
			return layoutKeeps
		}
	case "maxpool", "avgpool", "gavgpool":
		return layoutReads
	}
	return layoutNCHW
}

// launch runs the op; xn and yn say whether input 0 and output 0 are NHWC
// (pooling kernels take both).
func (k *opKernel) launch(g *device, st *execState, in, out []*ir.Tensor, din, dout []cuda.DevPtr, xn, yn int) error {
	p := &k.p
	X, Y := in[0], out[0]
	n, _ := ir.NumElements(Y.Dims)
	switch p.Kind {
	case "copy":
		nb := int64(len(Y.Data))
		if din[0]%16 == 0 && dout[0]%16 == 0 && nb >= 16 {
			return launch1(g, st, "copy_b16", nb/16, cuda.NewArgs(din[0], dout[0], nb))
		}
		return st.s.DtoD(dout[0], din[0], nb)
	case "act":
		switch X.DType {
		case ir.Float32:
			return launch1(g, st, "act_f32", n, cuda.NewArgs(din[0], dout[0], n, p.Act, p.ActA, p.ActB))
		case ir.Float16, ir.BFloat16:
			bf := 0
			if X.DType == ir.BFloat16 {
				bf = 1
			}
			return launch1(g, st, "act_f16", n, cuda.NewArgs(din[0], dout[0], n, p.Act, p.ActA, p.ActB, bf))
		case ir.Int8:
			return launch1(g, st, "relu_i8", n, cuda.NewArgs(din[0], dout[0], n))
		}
	case "binary":
		a, b := cuda.DevPtr(0), cuda.DevPtr(0)
		var ad, bd []int64
		switch p.ConstArg {
		case 0:
			a, ad, b, bd = k.consts[0], k.host[0].Dims, din[0], X.Dims
		case 1:
			a, ad, b, bd = din[0], X.Dims, k.consts[0], k.host[0].Dims
		default:
			a, ad, b, bd = din[0], X.Dims, din[1], in[1].Dims
		}
		dims, sa, sb, err := broadcast6(Y.Dims, ad, bd)
		if err != nil {
			return err
		}
		args := cuda.NewArgs(a, b, dout[0], n, p.BinOp)
		for _, d := range dims {
			args.Add(int(d))
		}
		for _, s := range sa {
			args.Add(s)
		}
		for _, s := range sb {
			args.Add(s)
		}
		return launch1(g, st, map[ir.DType]string{ir.Float32: "binary_f32", ir.Float16: "binary_f16", ir.BFloat16: "binary_bf16"}[X.DType], n, args)
	case "maxpool", "avgpool":
		nb, c, h, w := int(X.Dims[0]), int(X.Dims[1]), int(X.Dims[2]), int(X.Dims[3])
		oh, ow := int(Y.Dims[2]), int(Y.Dims[3])
		ph, pw := p.PH, p.PW
		if p.AutoPad != "" {
			ph, pw = samePad(h, oh, p.KH, p.SH, p.DH, p.AutoPad), samePad(w, ow, p.KW, p.SW, p.DW, p.AutoPad)
		}
		if p.Kind == "avgpool" {
			cp := 0
			if p.CountPad {
				cp = 1
			}
			f := map[ir.DType]int{ir.Float32: 0, ir.Float16: 1, ir.BFloat16: 2}[X.DType]
			if xn == 1 && p.KH == h && p.KW == w && oh == 1 && ow == 1 && ph == 0 && pw == 0 {
				// the window is the whole plane (ResNet-50's last pool): a global
				// average, every pixel counted whatever count_include_pad says
				if ok, err := gpoolNHWC(g, st, din[0], dout[0], nb, c, h*w, f); ok || err != nil {
					return err
				}
			}
			return launch1(g, st, "avgpool_any", n, cuda.NewArgs(din[0], dout[0], nb, c, h, w, oh, ow, p.KH, p.KW, p.SH, p.SW, ph, pw, cp, f, xn, yn))
		}
		if (X.DType == ir.Int8 || X.DType == ir.Uint8) && xn == 1 && yn == 1 && c%16 == 0 && p.KH == 3 && p.KW == 3 {
			// NHWC 8-bit codes, the CNNs' 3×3 pool: 16 channels per thread
			args := cuda.NewArgs(din[0], dout[0], nb, c, h, w, oh, ow, p.SH, p.SW, ph, pw, p.DH, p.DW, b2i(X.DType == ir.Int8))
			return launch1(g, st, "maxpool3_nhwc16", n/16, args)
		}
		if f, ok := map[ir.DType]int{ir.Float16: 0, ir.BFloat16: 1, ir.Int8: 2, ir.Uint8: 3, ir.Float8E4M3FN: 4}[X.DType]; ok && xn == 1 && yn == 1 && c%8 == 0 {
			// NHWC in and out: 8 channels per thread, vector loads
			args := cuda.NewArgs(din[0], dout[0], nb, c, h, w, oh, ow, p.KH, p.KW, p.SH, p.SW, ph, pw, p.DH, p.DW, f)
			return launch1(g, st, "maxpool_nhwc8", n/8, args)
		}
		args := cuda.NewArgs(din[0], dout[0], nb, c, h, w, oh, ow, p.KH, p.KW, p.SH, p.SW, ph, pw, p.DH, p.DW)
		name := map[ir.DType]string{ir.Float32: "maxpool_f32", ir.Int8: "maxpool_i8", ir.Uint8: "maxpool_u8", ir.Float16: "maxpool_f16", ir.BFloat16: "maxpool_f16", ir.Float8E4M3FN: "maxpool_e4m3"}[X.DType]
		if isFloat16ish(X.DType) {
			args.Add(b2i(X.DType == ir.BFloat16))
		}
		args.Add(xn).Add(yn)
		return launch1(g, st, name, n, args)
	case "gavgpool":
		nc := X.Dims[0] * X.Dims[1]
		hw := int(X.Dims[2] * X.Dims[3])
		if xn != 0 { // NHWC input; the output is [N][C] either way
			f := map[ir.DType]int{ir.Float32: 0, ir.Float16: 1, ir.BFloat16: 2}[X.DType]
			if ok, err := gpoolNHWC(g, st, din[0], dout[0], int(X.Dims[0]), int(X.Dims[1]), hw, f); ok || err != nil {
				return err
			}
			// channels not in whole 16-byte vectors: one thread per (n, c)
			return launch1(g, st, "gavgpool_nhwc", nc, cuda.NewArgs(din[0], dout[0], nc, int(X.Dims[1]), hw, f))
		}
		if isFloat16ish(X.DType) {
			return launchRows(g, st, "gavgpool_16", nc, cuda.NewArgs(din[0], dout[0], nc, hw, b2i(X.DType == ir.BFloat16)))
		}
		return launchRows(g, st, "gavgpool_f32", nc, cuda.NewArgs(din[0], dout[0], nc, hw))
	case "softmax", "layernorm":
		cols := X.Dims[X.Rank()-1]
		if p.Kind == "softmax" && p.Axis >= 0 && p.Axis < X.Rank() { // plans before session 11 say -1: the last
			cols = 1
			for _, d := range X.Dims[p.Axis:] {
				cols *= d
			}
		}
		rows := n / max(cols, 1)
		if p.Kind == "softmax" {
			return launchRows(g, st, "softmax_f32", rows, cuda.NewArgs(din[0], dout[0], rows, int(cols)))
		}
		var gm, bt cuda.DevPtr
		i := 0
		if p.HasG {
			gm, i = k.consts[i], i+1
		}
		if p.HasB2 {
			bt = k.consts[i]
		}
		return launchRows(g, st, "layernorm_f32", rows, cuda.NewArgs(din[0], gm, bt, dout[0], rows, int(cols), p.Eps))
	case "quant", "dequant":
		ns := int(k.host[0].Len())
		inner := int64(1)
		if p.Axis >= 0 {
			for _, d := range X.Dims[p.Axis+1:] {
				inner *= d
			}
		}
		var zp cuda.DevPtr
		if p.HasZero {
			zp = k.consts[1]
		}
		switch {
		case p.Kind == "quant" && p.Out == ir.Int8 && ns == 1 && n%4 == 0:
			return launch1(g, st, "quant_f32_i8_x4", n/4, cuda.NewArgs(din[0], dout[0], n/4, k.consts[0], zp))
		case p.Kind == "quant" && p.Out == ir.Int8:
			return launch1(g, st, "quant_f32_i8", n, cuda.NewArgs(din[0], dout[0], n, k.consts[0], ns, inner, zp))
		case p.Kind == "quant" && p.Out == ir.Uint8:
			return launch1(g, st, "quant_f32_u8", n, cuda.NewArgs(din[0], dout[0], n, k.consts[0], ns, inner, zp))
		case p.In == ir.Uint8:
			return launch1(g, st, "dequant_u8_f32", n, cuda.NewArgs(din[0], dout[0], n, k.consts[0], ns, inner, zp))
		case p.Kind == "quant" && ns == 1 && n%4 == 0:
			return launch1(g, st, "quant_f32_e4m3_x4", n/4, cuda.NewArgs(din[0], dout[0], n/4, k.consts[0]))
		case p.Kind == "quant":
			return launch1(g, st, "quant_f32_e4m3", n, cuda.NewArgs(din[0], dout[0], n, k.consts[0], ns, inner))
		case p.In == ir.Int8:
			return launch1(g, st, "dequant_i8_f32", n, cuda.NewArgs(din[0], dout[0], n, k.consts[0], ns, inner, zp))
		default:
			return launch1(g, st, "dequant_e4m3_f32", n, cuda.NewArgs(din[0], dout[0], n, k.consts[0], ns, inner))
		}
	case "concat":
		return concatCopies(g, st, in, Y, din, dout[0], p.Axis)
	case "transpose":
		dims, strides, err := transposeArgs(X.Dims, p.Perm)
		if err != nil {
			return err
		}
		args := cuda.NewArgs(din[0], dout[0], n)
		for _, d := range dims {
			args.Add(int(d))
		}
		for _, s := range strides {
			args.Add(s)
		}
		return launch1(g, st, fmt.Sprintf("transpose_b%d", X.DType.ByteSize(1)), n, args)
	case "cast":
		if p.In == ir.Float32 {
			return launch1(g, st, "cast_f32_16", n, cuda.NewArgs(din[0], dout[0], n, b2i(p.Out == ir.BFloat16)))
		}
		return launch1(g, st, "cast_16_f32", n, cuda.NewArgs(din[0], dout[0], n, b2i(p.In == ir.BFloat16)))
	}
	return fmt.Errorf("cuda.op %s on %s is not supported", p.Kind, X.DType)
}

// concatCopies copies each input into its slot of Concat's output y: the
// output is outer rows (the product of the dims before axis) of the inputs'
// row pieces side by side, so input i is one strided copy of outer rows of
// its bytes per row, at the byte offset of the pieces before it. The
// copy2d kernel moves 16, 4 or 1 bytes per element, the widest that every
// width, pitch and address allows.
func concatCopies(g *device, st *execState, in []*ir.Tensor, y *ir.Tensor, din []cuda.DevPtr, dy cuda.DevPtr, axis int) error {
	if axis < 0 || axis >= len(y.Dims) { // a corrupt plan
		return fmt.Errorf("cuda.op concat: axis %d of rank %d", axis, len(y.Dims))
	}
	outer := int64(1)
	for _, d := range y.Dims[:axis] {
		outer *= d
	}
	if outer == 0 || len(y.Data) == 0 {
		return nil
	}
	pitch := int64(len(y.Data)) / outer
	off := int64(0)
	for i, t := range in {
		w := int64(len(t.Data)) / outer
		if w == 0 {
			continue
		}
		dst := dy + cuda.DevPtr(off)
		unit := int64(1)
		for _, u := range []int64{16, 4} {
			if w%u == 0 && pitch%u == 0 && int64(din[i])%u == 0 && int64(dst)%u == 0 {
				unit = u
				break
			}
		}
		name := map[int64]string{16: "copy2d_b16", 4: "copy2d_b4", 1: "copy2d_b1"}[unit]
		if err := launch1(g, st, name, outer*w/unit, cuda.NewArgs(din[i], dst, outer, w/unit, pitch/unit)); err != nil {
			return err
		}
		off += w
	}
	return nil
}

// transposeArgs gives transpose_b*'s six output dims (outer first, padded
// with 1) and the input element stride of each: output axis i is input
// axis perm[i].
func transposeArgs(xd []int64, perm []int) ([6]int64, [6]int64, error) {
	var d, s [6]int64
	if len(perm) != len(xd) || len(xd) > 6 {
		return d, s, fmt.Errorf("transpose of %v by %v", xd, perm)
	}
	seen := make([]bool, len(xd))
	for _, a := range perm { // lowering checked it; a plan file may be corrupt
		if a < 0 || a >= len(xd) || seen[a] {
			return d, s, fmt.Errorf("transpose of %v by %v: not a permutation", xd, perm)
		}
		seen[a] = true
	}
	in := make([]int64, len(xd)) // input strides
	st := int64(1)
	for i := len(xd) - 1; i >= 0; i-- {
		in[i], st = st, st*xd[i]
	}
	for i := range d {
		d[i] = 1
	}
	off := 6 - len(xd)
	for i, a := range perm {
		d[off+i], s[off+i] = xd[a], in[a]
	}
	return d, s, nil
}

// gpoolGroups is gpool_nhwc's pixel groups per block (kiln.cu GP_G).
const gpoolGroups = 8

// gpoolNHWC runs kiln.cu's gpool_nhwc, the mean over each image's hw
// pixels of NHWC x into [n][c] (format as ld3's fmt: 0 float32, 1 float16,
// 2 bfloat16), where the channels fill whole 16-byte vectors (4 float32 or 8
// 16-bit floats); it reports false, launching nothing, where they do not.
// Blocks of 32 channel vectors × gpoolGroups pixel groups, a grid of
// channel blocks × images (at most 65535: the kernel loops over the rest).
func gpoolNHWC(g *device, st *execState, x, y cuda.DevPtr, n, c, hw, format int) (bool, error) {
	per := 8
	if format == 0 {
		per = 4
	}
	if c%per != 0 {
		return false, nil
	}
	f, err := g.fn("gpool_nhwc")
	if err != nil {
		return false, err
	}
	cv := c / per
	grid := [3]uint32{uint32((cv + 31) / 32), uint32(min(n, 65535)), 1}
	return true, f.Launch(st.s, grid, [3]uint32{32, gpoolGroups, 1}, 0, cuda.NewArgs(x, y, n, cv, hw, format))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// broadcast6 right-aligns a and b against out (rank <= 6) and returns the
// six output dims (outer first, padded with 1) and each operand's element
// strides (0 where it broadcasts).
func broadcast6(out, a, b []int64) ([6]int64, [6]int64, [6]int64, error) {
	var d, sa, sb [6]int64
	if len(out) > 6 || len(a) > len(out) || len(b) > len(out) {
		return d, sa, sb, fmt.Errorf("broadcast of %v and %v to %v needs rank <= 6", a, b, out)
	}
	for i := range d {
		d[i] = 1
	}
	off := 6 - len(out)
	copy(d[off:], out)
	strides := func(x []int64, s *[6]int64) error {
		st := int64(1)
		for i := len(x) - 1; i >= 0; i-- {
			j := off + len(out) - len(x) + i
			switch x[i] {
			case d[j]:
				if x[i] != 1 {
					s[j] = st
				}
			case 1:
			default:
				return fmt.Errorf("cannot broadcast %v to %v", x, out)
			}
			st *= x[i]
		}
		return nil
	}
	if err := strides(a, &sa); err != nil {
		return d, sa, sb, err
	}
	return d, sa, sb, strides(b, &sb)
}
