package arith

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
)

// TestAgainstORT runs every op of this package, over random inputs, dtypes,
// attributes and opsets, through ONNX Runtime and kiln and compares the
// outputs: integers and bools exactly, floats within 1e-5 relative. It covers
// what ONNX's conformance data does not (Mod, BitShift, ArgMin, the rarer
// activations and reductions, Softmax before opset 13...). Cases are batched
// into one model per opset, so ONNX Runtime starts a handful of times. It
// needs a prepared copy of shared/tools/ort (npm ci done): set KILN_ORT to
// that folder; otherwise it skips.
func TestAgainstORT(t *testing.T) {
	dir := os.Getenv("KILN_ORT")
	if dir == "" {
		dir = os.Getenv("KILN_ORT_DIR")
	}
	if dir == "" {
		t.Skip("KILN_ORT not set (a copy of shared/tools/ort after npm ci)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		t.Skipf("KILN_ORT=%s has no node_modules: run npm ci there", dir)
	}
	byOpset := map[int64][]ortCase{}
	for _, c := range ortCases(rand.New(rand.NewSource(7))) {
		byOpset[c.opset] = append(byOpset[c.opset], c)
	}
	var opsets []int64
	for o := range byOpset {
		opsets = append(opsets, o)
	}
	sort.Slice(opsets, func(i, j int) bool { return opsets[i] < opsets[j] })
	for _, o := range opsets {
		t.Run(fmt.Sprint("opset", o), func(t *testing.T) { runORTBatch(t, dir, o, byOpset[o]) })
	}
}

type ortCase struct {
	name  string
	op    string
	opset int64
	attrs []*ir.Attribute
	in    []*ir.Tensor // nil: absent optional input
}

// runORTBatch puts the cases side by side in one graph (node k reads
// k_<i> and writes y_<k>), runs it in both runtimes and compares.
func runORTBatch(t *testing.T, dir string, opset int64, cases []ortCase) {
	g := &ir.Graph{Name: "arith"}
	feeds := map[string]*ir.Tensor{}
	for k, c := range cases {
		n := &ir.Node{Name: c.name, OpType: c.op, Attrs: c.attrs, Outputs: []string{fmt.Sprintf("y_%d", k)}}
		for i, x := range c.in {
			if x == nil {
				n.Inputs = append(n.Inputs, "")
				continue
			}
			name := fmt.Sprintf("%d_%d", k, i)
			n.Inputs = append(n.Inputs, name)
			g.Inputs = append(g.Inputs, &ir.ValueInfo{Name: name, Type: x.Type()})
			feeds[name] = x
		}
		g.Nodes = append(g.Nodes, n)
		g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: n.Outputs[0]})
	}
	m := &ir.Model{IRVersion: 8, Opsets: []ir.OpsetImport{{Version: opset}}, Graph: g}
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := onnx.Save(filepath.Join(tmp, "model.onnx"), m); err != nil {
		t.Fatal(err)
	}
	for i, vi := range g.Inputs {
		if err := onnx.WriteTensorFile(filepath.Join(in, fmt.Sprintf("input_%d.pb", i)), feeds[vi.Name]); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("node", filepath.Join(dir, "run.js"), filepath.Join(tmp, "model.onnx"), in, filepath.Join(tmp, "out"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ONNX Runtime: %v\n%s", err, out)
	}
	got, err := ops.Run(m, feeds)
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range cases {
		want, err := onnx.ReadTensorFile(filepath.Join(tmp, "out", fmt.Sprintf("output_%d.pb", k)))
		if err != nil {
			t.Fatal(err)
		}
		if msg := ortDiff(got[fmt.Sprintf("y_%d", k)], want); msg != "" {
			t.Errorf("%s (%s, opset %d): %s", c.name, c.op, opset, msg)
		}
	}
}

func ortDiff(got, want *ir.Tensor) string {
	if got.DType != want.DType || !equalDims(got.Dims, want.Dims) {
		return fmt.Sprintf("got %s%v, ONNX Runtime %s%v", got.DType, got.Dims, want.DType, want.Dims)
	}
	for i := int64(0); i < want.Len(); i++ {
		if !want.DType.IsFloat() {
			if g, w := got.Int64At(i), want.Int64At(i); g != w {
				return fmt.Sprintf("element %d: %d, ONNX Runtime %d", i, g, w)
			}
			continue
		}
		g, w := got.Float64At(i), want.Float64At(i)
		if (math.IsNaN(g) && math.IsNaN(w)) || g == w {
			continue
		}
		tol := 1e-5
		if want.DType == ir.Float16 {
			tol = 1e-3
		}
		if math.IsNaN(g) || math.IsNaN(w) || math.Abs(g-w) > 1e-7+tol*math.Abs(w) {
			return fmt.Sprintf("element %d: %v, ONNX Runtime %v", i, g, w)
		}
	}
	return ""
}

func ortCases(r *rand.Rand) []ortCase {
	rnd := func(dt ir.DType, d []int64, lo, hi float64) *ir.Tensor {
		t := ir.NewTensor(dt, d)
		for i := int64(0); i < t.Len(); i++ {
			v := lo + r.Float64()*(hi-lo)
			if dt.IsFloat() {
				t.SetFloat64At(i, v)
			} else {
				t.SetInt64At(i, int64(math.Floor(v)))
			}
		}
		return t
	}
	d := dims(3, 4, 5)
	var cs []ortCase
	add := func(name, op string, opset int64, a []*ir.Attribute, in ...*ir.Tensor) {
		cs = append(cs, ortCase{name, op, opset, a, in})
	}
	// Unary ops over the range where each is defined.
	ranges := map[string][2]float64{"Relu": {-3, 3}, "Sigmoid": {-8, 8}, "Tanh": {-3, 3}, "Erf": {-3, 3}, "Sqrt": {0, 9},
		"Exp": {-5, 5}, "Log": {0.01, 9}, "Neg": {-3, 3}, "Abs": {-3, 3}, "Reciprocal": {0.1, 3}, "Floor": {-3, 3},
		"Ceil": {-3, 3}, "Round": {-3, 3}, "Sign": {-3, 3}, "Softplus": {-30, 30}, "Softsign": {-3, 3}, "Sin": {-3, 3},
		"Cos": {-3, 3}, "Tan": {-1.5, 1.5}, "Asin": {-1, 1}, "Acos": {-1, 1}, "Atan": {-3, 3}, "Sinh": {-3, 3},
		"Cosh": {-3, 3}, "Asinh": {-3, 3}, "Acosh": {1, 5}, "Atanh": {-0.99, 0.99}, "Mish": {-5, 5}, "IsNaN": {-1, 1},
		"IsInf": {-1, 1}, "HardSwish": {-5, 5}}
	for op, rg := range ranges {
		add(op, op, 18, nil, rnd(ir.Float32, d, rg[0], rg[1]))
	}
	add("Round halves", "Round", 18, nil, f32(dims(8), -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 4.5))
	x := rnd(ir.Float32, d, -3, 3)
	add("LeakyRelu", "LeakyRelu", 16, attrs(aFloat("alpha", 0.3)), x)
	add("Elu", "Elu", 16, attrs(aFloat("alpha", 0.7)), x)
	add("Selu", "Selu", 16, nil, x)
	add("Selu attrs", "Selu", 16, attrs(aFloat("alpha", 2), aFloat("gamma", 3)), x)
	add("Celu", "Celu", 16, attrs(aFloat("alpha", 1.5)), x)
	add("ThresholdedRelu", "ThresholdedRelu", 16, attrs(aFloat("alpha", 0.5)), x)
	add("HardSigmoid", "HardSigmoid", 16, attrs(aFloat("alpha", 0.3), aFloat("beta", 0.4)), x)
	add("Shrink", "Shrink", 16, attrs(aFloat("bias", 0.3), aFloat("lambd", 0.7)), x)
	add("Shrink int8", "Shrink", 16, attrs(aFloat("bias", 1), aFloat("lambd", 2)), rnd(ir.Int8, d, -10, 10))
	add("Gelu", "Gelu", 20, nil, x)
	add("Gelu tanh", "Gelu", 20, attrs(aStr("approximate", "tanh")), x)
	add("Relu int32", "Relu", 16, nil, rnd(ir.Int32, d, -10, 10))
	add("Abs int16", "Abs", 16, nil, rnd(ir.Int16, d, -100, 100))
	add("Sign int64", "Sign", 16, nil, rnd(ir.Int64, d, -100, 100))
	add("Exp float16", "Exp", 16, nil, rnd(ir.Float16, d, -3, 3))
	add("Sigmoid float64", "Sigmoid", 16, nil, rnd(ir.Float64, d, -3, 3))
	// Binary ops with broadcasting, over float and integer types.
	for _, op := range []string{"Add", "Sub", "Mul", "Div"} {
		add(op+" float32", op, 14, nil, rnd(ir.Float32, d, -3, 3), rnd(ir.Float32, dims(4, 1), 0.5, 3))
		add(op+" int32", op, 14, nil, rnd(ir.Int32, d, -100, 100), rnd(ir.Int32, dims(5), -9, -1))
		add(op+" uint8", op, 14, nil, rnd(ir.Uint8, d, 0, 255), rnd(ir.Uint8, dims(1, 5), 1, 40))
		add(op+" int64", op, 14, nil, rnd(ir.Int64, d, -1e12, 1e12), rnd(ir.Int64, dims(5), 1, 1000))
	}
	for _, fm := range []int64{0, 1} {
		a := attrs(aInt("fmod", fm))
		add(fmt.Sprint("Mod int32 fmod", fm), "Mod", 13, a, rnd(ir.Int32, d, -100, 100), i32s(-7, -3, 3, 4, 9))
		add(fmt.Sprint("Mod int64 fmod", fm), "Mod", 13, a, rnd(ir.Int64, d, -100, 100), i64(dims(5), -7, -3, 3, 4, 9))
	}
	add("Mod float32 fmod1", "Mod", 13, attrs(aInt("fmod", 1)), rnd(ir.Float32, d, -10, 10), rnd(ir.Float32, dims(5), -3, 3))
	add("Mod uint8", "Mod", 13, nil, rnd(ir.Uint8, d, 0, 255), rnd(ir.Uint8, dims(5), 1, 30))
	add("Pow float32", "Pow", 15, nil, rnd(ir.Float32, d, 0.1, 3), rnd(ir.Float32, dims(5), -2, 2))
	add("Pow float32^int64", "Pow", 15, nil, rnd(ir.Float32, d, -3, 3), rnd(ir.Int64, dims(5), -3, 4))
	add("Pow int64^int64", "Pow", 15, nil, rnd(ir.Int64, d, -9, 9), rnd(ir.Int64, dims(5), 0, 12))
	add("Pow int32^float32", "Pow", 15, nil, rnd(ir.Int32, d, 0, 9), rnd(ir.Float32, dims(5), 0, 3))
	for _, dir := range []string{"LEFT", "RIGHT"} {
		a := attrs(aStr("direction", dir))
		add("BitShift uint8 "+dir, "BitShift", 11, a, rnd(ir.Uint8, d, 0, 255), rnd(ir.Uint8, dims(5), 0, 8))
		add("BitShift uint64 "+dir, "BitShift", 11, a, rnd(ir.Uint64, d, 0, 1e18), rnd(ir.Uint64, dims(5), 0, 63))
	}
	for _, op := range []string{"And", "Or", "Xor"} {
		add(op, op, 7, nil, rnd(ir.Bool, d, 0, 2), rnd(ir.Bool, dims(4, 1), 0, 2))
	}
	add("Not", "Not", 7, nil, rnd(ir.Bool, d, 0, 2))
	for _, op := range []string{"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"} {
		add(op+" int32", op, 16, nil, rnd(ir.Int32, d, -3, 3), rnd(ir.Int32, dims(5), -3, 3))
		add(op+" float32", op, 16, nil, rnd(ir.Float32, d, -3, 3), rnd(ir.Float32, dims(4, 1), -3, 3))
	}
	for _, op := range []string{"Max", "Min", "Sum", "Mean"} {
		add(op+" 3 inputs", op, 13, nil, rnd(ir.Float32, d, -3, 3), rnd(ir.Float32, dims(5), -3, 3), rnd(ir.Float32, dims(4, 1), -3, 3))
		add(op+" 1 input", op, 13, nil, rnd(ir.Float32, d, -3, 3))
	}
	add("Max int64", "Max", 13, nil, rnd(ir.Int64, d, -30, 30), rnd(ir.Int64, dims(5), -30, 30))
	add("Min uint32", "Min", 13, nil, rnd(ir.Uint32, d, 0, 30), rnd(ir.Uint32, dims(5), 0, 30))
	// Clip, PRelu, Where.
	add("Clip attrs", "Clip", 6, attrs(aFloat("min", -1), aFloat("max", 0.5)), x)
	add("Clip max attr", "Clip", 6, attrs(aFloat("max", 0.5)), x)
	add("Clip inputs", "Clip", 13, nil, x, f32(nil, -1), f32(nil, 0.5))
	add("Clip min input", "Clip", 13, nil, x, f32(nil, -1))
	add("Clip max input", "Clip", 13, nil, x, nil, f32(nil, 0.5))
	add("Clip int32", "Clip", 13, nil, rnd(ir.Int32, d, -30, 30), ints(ir.Int32, nil, -5), ints(ir.Int32, nil, 7))
	add("PRelu", "PRelu", 16, nil, x, rnd(ir.Float32, dims(5), 0, 1))
	add("PRelu per channel", "PRelu", 16, nil, x, rnd(ir.Float32, dims(4, 1), 0, 1))
	add("Where", "Where", 16, nil, rnd(ir.Bool, dims(4, 1), 0, 2), x, rnd(ir.Float32, dims(5), -3, 3))
	add("Where int64", "Where", 16, nil, rnd(ir.Bool, d, 0, 2), rnd(ir.Int64, dims(1), -3, 3), rnd(ir.Int64, dims(5), -3, 3))
	// Reductions: attribute axes (opset 13, ReduceSum 11), input axes (18),
	// keepdims, noop, empty sets, integers.
	for _, op := range []string{"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
		"ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"} {
		lo := -2.0
		if op == "ReduceLogSum" {
			lo = 0.1
		}
		v := rnd(ir.Float32, d, lo, 2)
		attrOpset := int64(13)
		if op == "ReduceSum" {
			attrOpset = 11
		}
		for _, keep := range []int64{0, 1} {
			k := aInt("keepdims", keep)
			add(fmt.Sprint(op, " attr axes keepdims ", keep), op, attrOpset, attrs(k, aInts("axes", 0, -1)), v)
			add(fmt.Sprint(op, " all axes keepdims ", keep), op, attrOpset, attrs(k), v)
			add(fmt.Sprint(op, " input axes keepdims ", keep), op, 18, attrs(k), v, i64(dims(1), 1))
		}
		add(op+" noop", op, 18, attrs(aInt("noop_with_empty_axes", 1)), v, i64(dims(0)))
		if op != "ReduceMean" { // undefined by the spec: kiln gives NaN (0/0, as numpy), ONNX Runtime 0
			add(op+" empty set", op, 18, nil, rnd(ir.Float32, dims(2, 0, 3), 0.1, 1), i64(dims(1), 1))
		}
		switch op {
		case "ReduceLogSum", "ReduceLogSumExp":
			// kiln truncates the exact log-sum-exp of integers; ONNX Runtime
			// truncates each exp(x - max) to an integer first (so only the
			// maxima count): log(3e^4) gives kiln 5, ONNX Runtime 4.
		case "ReduceL2":
			add(op+" int64", op, 18, nil, rnd(ir.Int64, d, 0, 5), i64(dims(1), 2))
		default:
			add(op+" int32", op, 18, nil, rnd(ir.Int32, d, -5, 5), i64(dims(1), 2))
		}
	}
	add("ReduceSum input axes", "ReduceSum", 13, nil, rnd(ir.Float32, d, -2, 2), i64(dims(1), -2))
	add("ReduceMax bool", "ReduceMax", 20, nil, rnd(ir.Bool, d, 0, 1.2), i64(dims(1), 1))
	add("ReduceMin bool", "ReduceMin", 20, nil, rnd(ir.Bool, d, 0.8, 2), i64(dims(1), 1))
	for _, op := range []string{"ArgMax", "ArgMin"} {
		ties := rnd(ir.Int32, d, -2, 2)
		for _, last := range []int64{0, 1} {
			l := aInt("select_last_index", last)
			add(fmt.Sprint(op, " last ", last), op, 13, attrs(aInt("axis", 1), l), ties)
			add(fmt.Sprint(op, " keepdims 0 last ", last), op, 13, attrs(aInt("axis", -1), aInt("keepdims", 0), l), ties)
		}
		add(op+" float32", op, 11, nil, rnd(ir.Float32, d, -2, 2))
	}
	for _, op := range []string{"Softmax", "LogSoftmax", "Hardmax"} {
		v := rnd(ir.Float32, dims(2, 3, 4), -5, 5)
		if op == "Hardmax" { // ties
			v = ir.FromFloat64s(ir.Float32, v.Dims, rnd(ir.Int32, v.Dims, -2, 2).Float64s())
		}
		for _, opset := range []int64{11, 13} {
			add(op+" default axis", op, opset, nil, v)
			for _, ax := range []int64{0, 1, -1} {
				add(fmt.Sprint(op, " axis ", ax), op, opset, attrs(aInt("axis", ax)), v)
			}
		}
	}
	return cs
}

func i32s(v ...int64) *ir.Tensor { return ints(ir.Int32, dims(int64(len(v))), v...) }
