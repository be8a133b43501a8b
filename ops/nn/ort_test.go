package nn_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
)

// TestAgainstORT runs random configurations of this package's ops, the
// corners ONNX's conformance data leaves out (asymmetric pads with
// dilations and groups, ceil mode with padding, ConvTranspose output_shape,
// every Resize mode on odd sizes...), through ONNX Runtime and kiln and
// compares the outputs. All nodes of a batch share one model, so that
// Node starts once. It needs a prepared copy of shared/tools/ort (npm ci
// done): set KILN_ORT to that folder; otherwise it skips.
func TestAgainstORT(t *testing.T) {
	dir := os.Getenv("KILN_ORT")
	if dir == "" {
		t.Skip("KILN_ORT not set (a copy of shared/tools/ort after npm ci)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		t.Skipf("KILN_ORT=%s has no node_modules: run npm ci there", dir)
	}
	r := rand.New(rand.NewPCG(2026, 11))
	var b ortBatch
	for i := 0; i < 40; i++ {
		b.add(convCase(r))
		b.add(convTransposeCase(r))
		b.add(poolCase(r, "MaxPool"))
		b.add(poolCase(r, "AveragePool"))
		b.add(resizeCase(r))
	}
	for i := 0; i < 10; i++ {
		b.add(normCase(r))
	}
	b.run(t, dir)

	// Resize-10 and Upsample-9 predate coordinate_transformation_mode
	old := ortBatch{opset: 10}
	for _, sc := range [][]float64{{1, 1, 0.6, 0.75}, {1, 1, 2, 3}, {1, 1, 0.5, 1.5}} {
		for _, mode := range []string{"nearest", "linear"} {
			old.add(ortNode{node: &ir.Node{OpType: "Resize", Attrs: []*ir.Attribute{strA("mode", mode)}},
				inputs: []*ir.Tensor{randF32(r, 1, 2, 5, 4), ir.FromFloat64s(ir.Float32, []int64{4}, sc)}, nOut: 1})
		}
	}
	old.run(t, dir)

	// the transformer-era ops, at opset 23
	tr := ortBatch{opset: 23}
	for i := 0; i < 12; i++ {
		tr.add(matmulCase(r))
		tr.add(einsumCase(r))
		tr.add(groupNormCase(r))
		tr.add(attentionCase(r))
		tr.add(rotaryCase(r))
	}
	tr.run(t, dir)
}

func matmulCase(r *rand.Rand) ortNode {
	m, k, n := ri(r, 1, 5), ri(r, 1, 6), ri(r, 1, 5)
	if r.IntN(2) == 0 {
		ta, tb := ri(r, 0, 1), ri(r, 0, 1)
		a, b := []int64{m, k}, []int64{k, n}
		if ta == 1 {
			a = []int64{k, m}
		}
		if tb == 1 {
			b = []int64{n, k}
		}
		c := [][]int64{{n}, {m, 1}, {1, n}, {m, n}, {}}[r.IntN(5)]
		return ortNode{node: &ir.Node{OpType: "Gemm", Attrs: []*ir.Attribute{intA("transA", ta), intA("transB", tb),
			floatA("alpha", 0.5), floatA("beta", -1.5)}}, inputs: []*ir.Tensor{randF32(r, a...), randF32(r, b...), randF32(r, c...)}, nOut: 1}
	}
	shapes := [][2][]int64{{{k}, {2, k, n}}, {{2, 1, m, k}, {3, k, n}}, {{m, k}, {k}}, {{1, 3, m, k}, {2, 1, k, n}}}
	sh := shapes[r.IntN(len(shapes))]
	return ortNode{node: &ir.Node{OpType: "MatMul"}, inputs: []*ir.Tensor{randF32(r, sh[0]...), randF32(r, sh[1]...)}, nOut: 1}
}

func einsumCase(r *rand.Rand) ortNode {
	cases := []struct {
		eq   string
		dims [][]int64
	}{
		{"bij,bjk->bik", [][]int64{{2, 3, 4}, {2, 4, 5}}},
		{"ij->ji", [][]int64{{3, 4}}},
		{"ii->i", [][]int64{{4, 4}}},
		{"bii->b", [][]int64{{2, 3, 3}}},
		{"ij,ij->i", [][]int64{{3, 5}, {3, 5}}},
		{"i,j->ij", [][]int64{{3}, {4}}},
		{"...ij,...jk->...ik", [][]int64{{2, 3, 4}, {2, 4, 2}}},
		{"bhqd,bhkd->bhqk", [][]int64{{1, 2, 3, 4}, {1, 2, 5, 4}}},
		{"abc->cab", [][]int64{{2, 3, 4}}},
		{"ij,jk,kl->il", [][]int64{{2, 3}, {3, 4}, {4, 2}}},
	}
	c := cases[r.IntN(len(cases))]
	var in []*ir.Tensor
	for _, d := range c.dims {
		in = append(in, randF32(r, d...))
	}
	return ortNode{node: &ir.Node{OpType: "Einsum", Attrs: []*ir.Attribute{strA("equation", c.eq)}}, inputs: in, nOut: 1}
}

func groupNormCase(r *rand.Rand) ortNode {
	g := ri(r, 1, 3)
	c := g * ri(r, 1, 3)
	x := []int64{ri(r, 1, 2), c, ri(r, 1, 4), ri(r, 1, 4)}
	if r.IntN(2) == 0 {
		return ortNode{node: &ir.Node{OpType: "RMSNormalization", Attrs: []*ir.Attribute{intA("axis", ri(r, 1, 3))}},
			inputs: []*ir.Tensor{randF32(r, x...), randF32(r, x[3])}, nOut: 1}
	}
	return ortNode{node: &ir.Node{OpType: "GroupNormalization", Attrs: []*ir.Attribute{intA("num_groups", g)}},
		inputs: []*ir.Tensor{randF32(r, x...), randF32(r, c), randF32(r, c)}, nOut: 1}
}

func attentionCase(r *rand.Rand) ortNode {
	b, hkv, sq, skv, d, dv := ri(r, 1, 2), ri(r, 1, 2), ri(r, 1, 4), ri(r, 1, 5), ri(r, 2, 4), ri(r, 2, 4)
	hq := hkv * ri(r, 1, 2)
	n := &ir.Node{OpType: "Attention", Attrs: []*ir.Attribute{intA("is_causal", ri(r, 0, 1))}}
	if r.IntN(3) == 0 {
		n.Attrs = append(n.Attrs, floatA("softcap", 2))
	}
	in := []*ir.Tensor{randF32(r, b, hq, sq, d), randF32(r, b, hkv, skv, d), randF32(r, b, hkv, skv, dv)}
	nOut := 1
	if r.IntN(2) == 0 {
		in = append(in, randF32(r, sq, skv))
	}
	if r.IntN(2) == 0 {
		for len(in) < 4 {
			in = append(in, nil)
		}
		p := ri(r, 1, 3)
		in = append(in, randF32(r, b, hkv, p, d), randF32(r, b, hkv, p, dv))
		if len(in) > 3 && in[3] != nil {
			in[3] = randF32(r, sq, skv+p)
		}
		nOut = 3
	}
	return ortNode{node: n, inputs: in, nOut: nOut}
}

func rotaryCase(r *rand.Rand) ortNode {
	b, h, s, d := ri(r, 1, 2), ri(r, 1, 2), ri(r, 1, 4), 2*ri(r, 1, 3)
	n := &ir.Node{OpType: "RotaryEmbedding", Attrs: []*ir.Attribute{intA("interleaved", ri(r, 0, 1))}}
	ids := make([]int64, b*s)
	for i := range ids {
		ids[i] = ri(r, 0, 7)
	}
	return ortNode{node: n, inputs: []*ir.Tensor{randF32(r, b, h, s, d), randF32(r, 8, d/2), randF32(r, 8, d/2),
		ir.FromInt64s(ir.Int64, []int64{b, s}, ids)}, nOut: 1}
}

type ortNode struct {
	node   *ir.Node
	inputs []*ir.Tensor
	nOut   int
	outDT  []ir.DType
}

type ortBatch struct {
	nodes []ortNode
	opset int64 // 0: 21
}

func (b *ortBatch) add(n ortNode) { b.nodes = append(b.nodes, n) }

func (b *ortBatch) run(t *testing.T, ortDir string) {
	g := &ir.Graph{Name: "batch"}
	var inputs []*ir.Tensor
	type outRef struct {
		node int
		name string
	}
	var outs []outRef
	for k, c := range b.nodes {
		c.node.Name = fmt.Sprintf("n%d_%s", k, c.node.OpType)
		for i, x := range c.inputs {
			if x == nil {
				c.node.Inputs = append(c.node.Inputs, "")
				continue
			}
			x.Name = fmt.Sprintf("n%d_in%d", k, i)
			c.node.Inputs = append(c.node.Inputs, x.Name)
			g.Inputs = append(g.Inputs, &ir.ValueInfo{Name: x.Name, Type: x.Type()})
			inputs = append(inputs, x)
		}
		for i := 0; i < c.nOut; i++ {
			name := fmt.Sprintf("n%d_out%d", k, i)
			c.node.Outputs = append(c.node.Outputs, name)
			dt := ir.Float32
			if i < len(c.outDT) {
				dt = c.outDT[i]
			}
			g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: name, Type: &ir.Type{Kind: ir.KindTensor, DType: dt}})
			outs = append(outs, outRef{k, name})
		}
		g.Nodes = append(g.Nodes, c.node)
	}
	opset := b.opset
	if opset == 0 {
		opset = 21
	}
	m := &ir.Model{IRVersion: 10, Opsets: []ir.OpsetImport{{Version: opset}}, Graph: g}
	tmp := t.TempDir()
	if err := onnx.Save(filepath.Join(tmp, "model.onnx"), m); err != nil {
		t.Fatal(err)
	}
	feeds := map[string]*ir.Tensor{}
	for i, x := range inputs {
		if err := onnx.WriteTensorFile(filepath.Join(tmp, fmt.Sprintf("input_%d.pb", i)), x); err != nil {
			t.Fatal(err)
		}
		feeds[x.Name] = x
	}
	cmd := exec.Command("node", filepath.Join(ortDir, "run.js"), filepath.Join(tmp, "model.onnx"), tmp,
		filepath.Join(tmp, "out"), "--opt", "disabled", "--threads", "1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ONNX Runtime: %v\n%s", err, out)
	}
	got, err := ops.Run(m, feeds)
	if err != nil {
		t.Fatalf("kiln: %v", err)
	}
	for i, o := range outs {
		want, err := onnx.ReadTensorFile(filepath.Join(tmp, "out", fmt.Sprintf("output_%d.pb", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := closeTo(got[o.name], want); err != nil {
			n := b.nodes[o.node]
			t.Errorf("%s %s: %v\nattrs %s\ninputs %v", o.name, n.node.OpType, err, attrString(n.node), inputDims(n.inputs))
		}
	}
	t.Logf("%d nodes compared with ONNX Runtime", len(b.nodes))
}

func closeTo(got, want *ir.Tensor) error {
	if got == nil {
		return fmt.Errorf("kiln made no output")
	}
	if got.DType != want.DType || fmt.Sprint(got.Dims) != fmt.Sprint(want.Dims) {
		return fmt.Errorf("kiln made %s%v, ONNX Runtime %s%v", got.DType, got.Dims, want.DType, want.Dims)
	}
	for i := int64(0); i < want.Len(); i++ {
		a, b := got.Float64At(i), want.Float64At(i)
		if math.IsNaN(a) && math.IsNaN(b) {
			continue
		}
		if !(math.Abs(a-b) <= 1e-4*math.Abs(b)+1e-5) {
			return fmt.Errorf("element %d: kiln %v, ONNX Runtime %v", i, a, b)
		}
	}
	return nil
}

func attrString(n *ir.Node) string {
	s := ""
	for _, a := range n.Attrs {
		switch a.Type {
		case ir.AttrInt:
			s += fmt.Sprintf("%s=%d ", a.Name, a.I)
		case ir.AttrInts:
			s += fmt.Sprintf("%s=%v ", a.Name, a.Ints)
		case ir.AttrFloat:
			s += fmt.Sprintf("%s=%v ", a.Name, a.F)
		case ir.AttrString:
			s += fmt.Sprintf("%s=%s ", a.Name, a.S)
		}
	}
	return s
}

func inputDims(in []*ir.Tensor) string {
	s := ""
	for _, x := range in {
		if x == nil {
			s += "- "
		} else if x.Len() <= 8 && x.Rank() == 1 {
			s += fmt.Sprintf("%v=%v ", x.Dims, x.Float64s())
		} else {
			s += fmt.Sprintf("%v ", x.Dims)
		}
	}
	return s
}

func ri(r *rand.Rand, lo, hi int) int64 { return int64(lo + r.IntN(hi-lo+1)) }

func randF32(r *rand.Rand, d ...int64) *ir.Tensor {
	n := int64(1)
	for _, v := range d {
		n *= v
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = r.Float64()*2 - 1
	}
	return ir.FromFloat64s(ir.Float32, d, v)
}

func ints(name string, v ...int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInts, Ints: v}
}
func intA(name string, v int64) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrInt, I: v}
}
func strA(name, v string) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrString, S: []byte(v)}
}
func floatA(name string, v float32) *ir.Attribute {
	return &ir.Attribute{Name: name, Type: ir.AttrFloat, F: v}
}

func convCase(r *rand.Rand) ortNode {
	rank := int(ri(r, 1, 3))
	group := []int64{1, 1, 2, 3}[r.IntN(4)]
	cg, mg := ri(r, 1, 3), ri(r, 1, 3)
	if r.IntN(4) == 0 { // depthwise
		cg = 1
	}
	x := []int64{ri(r, 1, 2), cg * group}
	w := []int64{mg * group, cg}
	var strides, dils, pads []int64
	for d := 0; d < rank; d++ {
		k := ri(r, 1, 4)
		w = append(w, k)
		dils = append(dils, ri(r, 1, 2))
		strides = append(strides, ri(r, 1, 3))
		x = append(x, (k-1)*dils[d]+1+ri(r, 0, 6))
	}
	for d := 0; d < 2*rank; d++ {
		pads = append(pads, ri(r, 0, 2))
	}
	n := &ir.Node{OpType: "Conv", Attrs: []*ir.Attribute{intA("group", group), ints("strides", strides...)}}
	switch r.IntN(4) {
	case 0: // ONNX Runtime supports SAME only without dilation; strides as in poolCase
		for d := range strides {
			strides[d] = min(strides[d], w[2+d])
		}
		n.Attrs[1] = ints("strides", strides...)
		n.Attrs = append(n.Attrs, strA("auto_pad", []string{"SAME_UPPER", "SAME_LOWER", "VALID"}[r.IntN(3)]))
	default:
		n.Attrs = append(n.Attrs, ints("pads", pads...), ints("dilations", dils...))
	}
	in := []*ir.Tensor{randF32(r, x...), randF32(r, w...)}
	if r.IntN(2) == 0 {
		in = append(in, randF32(r, w[0]))
	}
	return ortNode{node: n, inputs: in, nOut: 1}
}

func convTransposeCase(r *rand.Rand) ortNode {
	rank := int(ri(r, 1, 3))
	group := []int64{1, 1, 2}[r.IntN(3)]
	cg, mg := ri(r, 1, 3), ri(r, 1, 2)
	x := []int64{ri(r, 1, 2), cg * group}
	w := []int64{cg * group, mg}
	var strides, dils, pads, outPad, outShape []int64
	for d := 0; d < rank; d++ {
		k := ri(r, 1, 4)
		w = append(w, k)
		dils = append(dils, ri(r, 1, 2))
		strides = append(strides, ri(r, 1, 3))
		x = append(x, ri(r, 1, 5))
		outPad = append(outPad, ri(r, 0, int(strides[d]-1)))
	}
	for d := 0; d < 2*rank; d++ {
		pads = append(pads, ri(r, 0, 1))
	}
	n := &ir.Node{OpType: "ConvTranspose", Attrs: []*ir.Attribute{intA("group", group), ints("strides", strides...), ints("dilations", dils...)}}
	switch r.IntN(4) {
	case 0:
		// SAME makes the output input·stride; where the unpadded output is
		// shorter ONNX pads negatively (bias-only border) but ONNX Runtime
		// stops at the unpadded size, so only longer ones are compared.
		for d := 0; d < rank; d++ {
			if full := strides[d]*(x[2+d]-1) + (w[2+d]-1)*dils[d] + 1; full < x[2+d]*strides[d] {
				w[2+d] += (x[2+d]*strides[d] - full + dils[d] - 1) / dils[d]
			}
		}
		n.Attrs = append(n.Attrs, strA("auto_pad", []string{"SAME_UPPER", "SAME_LOWER"}[r.IntN(2)]))
	case 1:
		for d := 0; d < rank; d++ { // an output_shape the unpadded output can cover
			full := strides[d]*(x[2+d]-1) + (w[2+d]-1)*dils[d] + 1
			outShape = append(outShape, max(1, full-ri(r, 0, 2)))
		}
		n.Attrs = append(n.Attrs, ints("output_shape", outShape...))
	default:
		n.Attrs = append(n.Attrs, ints("pads", pads...), ints("output_padding", outPad...))
		for d := 0; d < rank; d++ { // keep the output non-empty
			if strides[d]*(x[2+d]-1)+outPad[d]+(w[2+d]-1)*dils[d]+1-pads[d]-pads[d+rank] <= 0 {
				pads[d], pads[d+rank] = 0, 0
			}
		}
	}
	in := []*ir.Tensor{randF32(r, x...), randF32(r, w...)}
	if r.IntN(2) == 0 {
		in = append(in, randF32(r, mg*group))
	}
	return ortNode{node: n, inputs: in, nOut: 1}
}

func poolCase(r *rand.Rand, op string) ortNode {
	rank := int(ri(r, 1, 3))
	x := []int64{1, ri(r, 1, 2)}
	var kernel, strides, dils, pads []int64
	for d := 0; d < rank; d++ {
		k := ri(r, 1, 3)
		kernel = append(kernel, k)
		strides = append(strides, ri(r, 1, 3))
		dils = append(dils, ri(r, 1, 2))
		x = append(x, (k-1)*dils[d]+1+ri(r, 0, 5))
	}
	for d := 0; d < 2*rank; d++ {
		pads = append(pads, ri(r, 0, int(kernel[d%rank]-1))) // pads smaller than the kernel
	}
	n := &ir.Node{OpType: op, Attrs: []*ir.Attribute{ints("kernel_shape", kernel...), ints("strides", strides...)}}
	if r.IntN(5) == 0 {
		// ONNX leaves ceil_mode with auto_pad undefined (its reference
		// refuses it), and ONNX Runtime sizes SAME with dilations its own way.
		// A stride longer than the kernel could ask SAME for negative pads,
		// which kiln clamps to 0 (as TensorFlow) and ONNX Runtime applies.
		for d := range strides {
			strides[d] = min(strides[d], kernel[d])
		}
		n.Attrs[1] = ints("strides", strides...)
		n.Attrs = append(n.Attrs, strA("auto_pad", []string{"SAME_UPPER", "SAME_LOWER", "VALID"}[r.IntN(3)]))
	} else {
		n.Attrs = append(n.Attrs, ints("pads", pads...), ints("dilations", dils...), intA("ceil_mode", ri(r, 0, 1)))
	}
	nOut, dts := 1, []ir.DType{ir.Float32}
	if op == "AveragePool" {
		n.Attrs = append(n.Attrs, intA("count_include_pad", ri(r, 0, 1)))
	} else if r.IntN(2) == 0 {
		nOut, dts = 2, []ir.DType{ir.Float32, ir.Int64}
		n.Attrs = append(n.Attrs, intA("storage_order", ri(r, 0, 1)))
	}
	return ortNode{node: n, inputs: []*ir.Tensor{randF32(r, x...)}, nOut: nOut, outDT: dts}
}

func resizeCase(r *rand.Rand) ortNode {
	x := []int64{1, ri(r, 1, 2), ri(r, 1, 6), ri(r, 2, 6)}
	mode := []string{"nearest", "linear", "cubic"}[r.IntN(3)]
	ctm := []string{"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize"}[r.IntN(5)]
	n := &ir.Node{OpType: "Resize", Attrs: []*ir.Attribute{strA("mode", mode), strA("coordinate_transformation_mode", ctm)}}
	if mode == "nearest" {
		n.Attrs = append(n.Attrs, strA("nearest_mode", []string{"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}[r.IntN(4)]))
	}
	if mode == "cubic" {
		n.Attrs = append(n.Attrs, floatA("cubic_coeff_a", []float32{-0.75, -0.5}[r.IntN(2)]), intA("exclude_outside", ri(r, 0, 1)))
	}
	var roi *ir.Tensor
	if ctm == "tf_crop_and_resize" {
		// inside [0, 1]: for positions outside the input ONNX Runtime
		// interpolates where ONNX (and kiln) return extrapolation_value
		roi = ir.FromFloat64s(ir.Float32, []int64{8}, []float64{0, 0, 0.3 * r.Float64(), 0.2 * r.Float64(),
			1, 1, 0.7 + 0.3*r.Float64(), 0.9 + 0.1*r.Float64()})
		n.Attrs = append(n.Attrs, floatA("extrapolation_value", -3))
	}
	in := []*ir.Tensor{randF32(r, x...), roi}
	if r.IntN(2) == 0 {
		s := []float64{1, 1, []float64{0.5, 0.6, 1.5, 2, 3}[r.IntN(5)], []float64{0.5, 0.7, 1.3, 2}[r.IntN(4)]}
		if mode == "nearest" {
			// a scale that float32 cannot hold exactly puts some positions a
			// rounding error away from a tie, which float32 and float64
			// arithmetic break differently
			s[2], s[3] = []float64{0.5, 1.5, 2, 3}[r.IntN(4)], []float64{0.5, 0.75, 1.25, 2}[r.IntN(4)]
		}
		if ctm == "tf_crop_and_resize" || ctm == "align_corners" || ctm == "pytorch_half_pixel" {
			s[2], s[3] = 2, 2 // ORT and ONNX use different output lengths in these formulas for fractional sizes
		}
		in = append(in, ir.FromFloat64s(ir.Float32, []int64{4}, s))
	} else {
		lo := 1
		if ctm == "tf_crop_and_resize" || ctm == "pytorch_half_pixel" {
			lo = 2 // for one output position ONNX Runtime samples elsewhere than ONNX's formula
		}
		h, w := ri(r, lo, 9), ri(r, lo, 9)
		if ctm == "tf_crop_and_resize" {
			// ONNX Runtime leaves an axis of unchanged size alone, ignoring its roi
			for h == x[2] {
				h = ri(r, lo, 9)
			}
			for w == x[3] {
				w = ri(r, lo, 9)
			}
		}
		in = append(in, nil, ir.FromInt64s(ir.Int64, []int64{4}, []int64{x[0], x[1], h, w}))
	}
	return ortNode{node: n, inputs: in, nOut: 1}
}

func normCase(r *rand.Rand) ortNode {
	x := []int64{ri(r, 1, 3), 4, ri(r, 1, 4), ri(r, 1, 5)}
	switch r.IntN(5) {
	case 0:
		return ortNode{node: &ir.Node{OpType: "InstanceNormalization", Attrs: []*ir.Attribute{floatA("epsilon", 1e-3)}},
			inputs: []*ir.Tensor{randF32(r, x...), randF32(r, 4), randF32(r, 4)}, nOut: 1}
	case 1:
		axis := ri(r, 1, 3)
		return ortNode{node: &ir.Node{OpType: "LayerNormalization", Attrs: []*ir.Attribute{intA("axis", axis)}},
			inputs: []*ir.Tensor{randF32(r, x...), randF32(r, x[axis:]...), randF32(r, x[axis:]...)}, nOut: 1}
	case 2:
		return ortNode{node: &ir.Node{OpType: "LRN", Attrs: []*ir.Attribute{intA("size", 2*ri(r, 0, 2)+1), floatA("alpha", 0.3)}},
			inputs: []*ir.Tensor{randF32(r, x...)}, nOut: 1}
	case 3:
		return ortNode{node: &ir.Node{OpType: "BatchNormalization", Attrs: []*ir.Attribute{floatA("epsilon", 1e-2)}},
			inputs: []*ir.Tensor{randF32(r, x...), randF32(r, 4), randF32(r, 4), randF32(r, 4),
				ir.FromFloat64s(ir.Float32, []int64{4}, []float64{0.5, 1, 2, 3})}, nOut: 1}
	}
	return ortNode{node: &ir.Node{OpType: "LpPool", Attrs: []*ir.Attribute{ints("kernel_shape", 2, 2), intA("p", ri(r, 1, 3)),
		ints("pads", 1, 0, 0, 1)}}, inputs: []*ir.Tensor{randF32(r, x[0], x[1], 4, 5)}, nOut: 1}
}
