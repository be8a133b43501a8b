package cpu

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
)

const guard = 64 // bytes of 0xA5 around every buffer a kernel writes

func aInts(name string, v ...int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInts, Ints: v}
}
func aInt(name string, v int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInt, I: v}
}
func aFloat(name string, v float32) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrFloat, F: v}
}
func aFloats(name string, v ...float32) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrFloats, Floats: v}
}
func aStr(name, v string) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrString, S: []byte(v)}
}

func node(domain, op string, nIn int, attrs ...*ir.Attribute) *ir.Node {
	n := &ir.Node{Name: op + "_0", Domain: domain, OpType: op, Outputs: []string{"y"}, Attrs: attrs}
	for i := 0; i < nIn; i++ {
		n.Inputs = append(n.Inputs, fmt.Sprintf("in%d", i))
	}
	return n
}

func opsetOf(n *ir.Node) int64 {
	if n.Domain == "kiln" {
		return 1
	}
	return 21
}

// reference runs the node with the reference executor.
func reference(t testing.TB, n *ir.Node, in []*ir.Tensor) *ir.Tensor {
	t.Helper()
	op, err := ops.Lookup(n.Domain, n.OpType, opsetOf(n))
	if err != nil {
		t.Fatal(err)
	}
	c := ops.NewCtx(n, opsetOf(n))
	out, err := op.Run(c, in)
	if err == nil {
		err = c.Err()
	}
	if err != nil {
		t.Fatalf("reference %s: %v", n, err)
	}
	return out[0]
}

// layer describes the node to the backend; consts marks weight inputs.
func layer(n *ir.Node, in []*ir.Tensor, consts []bool, out *ir.Tensor, prec engine.Precision) *engine.Layer {
	l := &engine.Layer{Node: n, Opset: opsetOf(n), Precision: prec, Out: []*ir.Type{out.Type()}}
	for i, t := range in {
		if t == nil {
			l.In, l.Const = append(l.In, nil), append(l.Const, nil)
			continue
		}
		l.In = append(l.In, t.Type())
		if i < len(consts) && consts[i] {
			l.Const = append(l.Const, t)
		} else {
			l.Const = append(l.Const, nil)
		}
	}
	return l
}

// guarded returns a tensor whose data sits between guard bands.
func guarded(dt ir.DType, dims []int64) (*ir.Tensor, []byte) {
	t := ir.NewTensor(dt, dims)
	n := len(t.Data)
	buf := ir.AlignedBytes(int64(n + 2*guard))
	for i := range buf {
		buf[i] = 0xA5
	}
	t.Data = buf[guard : guard+n : guard+n]
	return t, buf
}

func checkGuard(t testing.TB, what string, buf []byte, n int) {
	t.Helper()
	for i, b := range buf {
		if (i < guard || i >= guard+n) && b != 0xA5 {
			t.Fatalf("%s: byte %d outside the buffer was written", what, i-guard)
		}
	}
}

// execKernel lowers the layer with one tactic, decodes the kernel and runs
// it with the given thread count, checking guard bands around the output
// and the scratch memory.
func execKernel(t testing.TB, tac engine.Tactic, l *engine.Layer, in []*ir.Tensor, threads int) *ir.Tensor {
	t.Helper()
	low, err := tac.Lower(l)
	if err != nil {
		t.Fatalf("%s: lower: %v", tac.Name(), err)
	}
	dec, err := engine.LookupKernel(low.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	k, err := dec(low.Params, low.Weights)
	if err != nil {
		t.Fatalf("%s: decode: %v", tac.Name(), err)
	}
	var kin []*ir.Tensor
	use := low.Inputs
	if use == nil {
		for i := range in {
			use = append(use, i)
		}
	}
	for _, i := range use {
		kin = append(kin, in[i])
	}
	shapes, err := k.Shapes(kin)
	if err != nil {
		t.Fatalf("%s: shapes: %v", tac.Name(), err)
	}
	out, obuf := guarded(l.Out[0].DType, shapes[0])
	var sbuf []byte
	var sn int
	x := &engine.Exec{Threads: threads, Scratch: func(n int) []byte {
		if cap(sbuf) < n+2*guard {
			sbuf = ir.AlignedBytes(int64(n + 2*guard))
			for i := range sbuf {
				sbuf[i] = 0xA5
			}
		}
		sn = n
		return sbuf[guard : guard+n : guard+n]
	}}
	if err := k.Run(x, kin, []*ir.Tensor{out}); err != nil {
		t.Fatalf("%s: run: %v", tac.Name(), err)
	}
	checkGuard(t, tac.Name()+" output", obuf, len(out.Data))
	if sbuf != nil {
		checkGuard(t, tac.Name()+" scratch", sbuf[:sn+2*guard], sn)
	}
	return out
}

// tacticsFor returns the cpu tactics offered for a layer (failing when none).
func tacticsFor(t testing.TB, l *engine.Layer) []engine.Tactic {
	t.Helper()
	ts := Backend{}.Tactics(l)
	if len(ts) == 0 {
		t.Fatalf("%s: no cpu tactic", l.Node)
	}
	return ts
}

// closeF32 compares float32 tensors: NaN where NaN, equal infinities, and
// |got−want| ≤ rel·max(|want|, mean|want|) elsewhere.
func closeF32(t testing.TB, what string, got, want *ir.Tensor, rel float64) {
	t.Helper()
	if !sameDims(got.Dims, want.Dims) || got.DType != want.DType {
		t.Fatalf("%s: got %s%v, want %s%v", what, got.DType, got.Dims, want.DType, want.Dims)
	}
	g, w := got.F32(), want.F32()
	var mean float64
	for _, v := range w {
		if !math.IsInf(float64(v), 0) && !math.IsNaN(float64(v)) {
			mean += math.Abs(float64(v))
		}
	}
	mean /= float64(max(len(w), 1))
	for i := range w {
		a, b := float64(g[i]), float64(w[i])
		switch {
		case math.IsNaN(b) || math.IsNaN(a):
			if math.IsNaN(a) != math.IsNaN(b) {
				t.Fatalf("%s: element %d: %v, want %v", what, i, a, b)
			}
		case math.IsInf(b, 0) || math.IsInf(a, 0):
			if a != b {
				t.Fatalf("%s: element %d: %v, want %v", what, i, a, b)
			}
		default:
			if math.Abs(a-b) > rel*math.Max(math.Abs(b), mean) {
				t.Fatalf("%s: element %d: %v, want %v (rel %.2g)", what, i, a, b, math.Abs(a-b)/math.Max(math.Abs(b), mean))
			}
		}
	}
}

func sameBits(t testing.TB, what string, got, want *ir.Tensor) {
	t.Helper()
	if got.DType != want.DType || !sameDims(got.Dims, want.Dims) {
		t.Fatalf("%s: got %s%v, want %s%v", what, got.DType, got.Dims, want.DType, want.Dims)
	}
	if !bytes.Equal(got.Data, want.Data) {
		for i := range got.Data {
			if got.Data[i] != want.Data[i] {
				t.Fatalf("%s: byte %d: %#x, want %#x", what, i, got.Data[i], want.Data[i])
			}
		}
	}
}

func randF32(r *rand.Rand, dims ...int64) *ir.Tensor {
	t := ir.NewTensor(ir.Float32, dims)
	for i := range t.F32() {
		t.F32()[i] = float32(r.NormFloat64())
	}
	return t
}

func randCodes(r *rand.Rand, dt ir.DType, dims ...int64) *ir.Tensor {
	t := ir.NewTensor(dt, dims)
	for i := range t.Data {
		t.Data[i] = byte(r.IntN(256))
	}
	if dt == ir.Float8E4M3FN { // no NaN codes in weights/activations
		for i, c := range t.Data {
			if c&0x7f == 0x7f {
				t.Data[i] = c &^ 1
			}
		}
	}
	if dt == ir.Float8E5M2 { // no Inf/NaN codes (exponent all ones)
		for i, c := range t.Data {
			if c&0x7c == 0x7c {
				t.Data[i] = c &^ 0x40
			}
		}
	}
	return t
}

// everyTactic runs each tactic at 1..4 threads: the first result is
// checked by cmp, later ones must equal it bit for bit.
func everyTactic(t *testing.T, l *engine.Layer, in []*ir.Tensor, cmp func(name string, got *ir.Tensor)) {
	t.Helper()
	for _, tac := range tacticsFor(t, l) {
		first := execKernel(t, tac, l, in, 1)
		cmp(tac.Name(), first)
		for th := 2; th <= 4; th++ {
			sameBits(t, fmt.Sprintf("%s threads %d vs 1", tac.Name(), th), execKernel(t, tac, l, in, th), first)
		}
	}
}
