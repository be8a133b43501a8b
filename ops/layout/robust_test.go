package layout

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// opInputs is how many inputs each op may take (the robustness test feeds
// 1..n, some absent).
var opInputs = map[string]int{
	"Reshape": 2, "Flatten": 1, "Squeeze": 2, "Unsqueeze": 2, "Identity": 1, "Dropout": 3, "Shape": 1, "Size": 1,
	"ConstantOfShape": 1, "EyeLike": 1, "Range": 3, "Transpose": 1, "Concat": 3, "Split": 2, "Slice": 5,
	"Gather": 2, "GatherElements": 2, "GatherND": 2, "ScatterElements": 3, "ScatterND": 3, "Pad": 4,
	"Expand": 2, "Tile": 2, "OneHot": 3, "NonZero": 1, "Compress": 2, "Trilu": 2, "ReverseSequence": 2,
	"DepthToSpace": 1, "SpaceToDepth": 1, "CenterCropPad": 2, "TopK": 2, "Unique": 1, "CumSum": 2,
}

var intAttrs = []string{"axis", "allowzero", "batch_dims", "num_outputs", "k", "upper", "blocksize", "batch_axis",
	"time_axis", "largest", "sorted", "exclusive", "reverse", "start", "end", "dtype", "seed"}

func randTensor(r *rand.Rand) *ir.Tensor {
	extremes := []int64{math.MinInt64, math.MaxInt64, -1 << 40, 1 << 40, -1, 0, 1, 2, 3, -2}
	switch r.Intn(5) {
	case 0, 1: // small int64 vector of "parameters"
		n := r.Intn(5)
		v := make([]int64, n)
		for i := range v {
			if r.Intn(4) == 0 {
				v[i] = extremes[r.Intn(len(extremes))]
			} else {
				v[i] = int64(r.Intn(7) - 3)
			}
		}
		if n == 1 && r.Intn(2) == 0 {
			return ir.ScalarInt64(v[0])
		}
		return vec(v...)
	case 2:
		b := ir.NewTensor(ir.Bool, dims(int64(r.Intn(4))))
		for i := range b.Data {
			b.Data[i] = byte(r.Intn(2))
		}
		return b
	}
	rank := r.Intn(5)
	d := make([]int64, rank)
	for i := range d {
		d[i] = int64(r.Intn(4))
	}
	dt := []ir.DType{ir.Float32, ir.Int4, ir.String, ir.Int32}[r.Intn(4)]
	t := ir.NewTensor(dt, d)
	for i := int64(0); i < t.Len(); i++ {
		if dt != ir.String {
			t.SetInt64At(i, int64(r.Intn(5)-2))
		}
	}
	return t
}

// TestNoPanics throws random inputs and attributes at every kernel and
// inference function: errors are fine, panics are not.
func TestNoPanics(t *testing.T) {
	seed, trials := int64(1), 300
	if s := os.Getenv("KILN_FUZZ_SEED"); s != "" { // longer local runs: KILN_FUZZ_SEED=7
		seed, _ = strconv.ParseInt(s, 10, 64)
		trials = 3000
	}
	r := rand.New(rand.NewSource(seed))
	var names []string
	for op := range opInputs {
		names = append(names, op)
	}
	sort.Strings(names)
	for _, op := range names {
		nIn := opInputs[op]
		for _, opset := range []int64{9, 11, 13, 18, 21} {
			o, err := ops.Lookup("", op, opset)
			if err != nil {
				continue
			}
			for trial := 0; trial < trials; trial++ {
				in := make([]*ir.Tensor, 1+r.Intn(nIn))
				for i := range in {
					if i == 0 || r.Intn(5) > 0 {
						in[i] = randTensor(r)
					}
				}
				if in[0].Rank() == 0 && in[0].Len() == 1 && r.Intn(2) == 0 {
					in[0] = randTensor(r)
				}
				var attrs []*ir.Attribute
				for _, a := range intAttrs {
					if r.Intn(4) == 0 {
						attrs = append(attrs, aInt(a, int64(r.Intn(7)-3)))
					}
				}
				if r.Intn(3) == 0 {
					attrs = append(attrs, aInts([]string{"perm", "axes", "pads", "split", "starts", "ends"}[r.Intn(6)],
						int64(r.Intn(5)-2), int64(r.Intn(5)-2)))
				}
				if r.Intn(4) == 0 {
					attrs = append(attrs, aStr("mode", []string{"reflect", "edge", "wrap", "CRD", "bogus"}[r.Intn(5)]))
				}
				if r.Intn(4) == 0 {
					attrs = append(attrs, aStr("reduction", []string{"add", "mul", "max", "min"}[r.Intn(4)]))
				}
				nOut := 1 + r.Intn(4)
				n := mkNode(op, in, nOut, attrs...)
				desc := fmt.Sprintf("%s opset %d inputs %v attrs", op, opset, in)
				for _, a := range n.Attrs {
					desc += fmt.Sprintf(" %s=%d%v%s", a.Name, a.I, a.Ints, a.S)
				}
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Fatalf("kernel panicked: %s: %v", desc, p)
						}
					}()
					outs, err := o.Run(ops.NewCtx(n, opset), in)
					if err == nil {
						for _, y := range outs {
							if y != nil {
								if err := y.Check(); err != nil {
									t.Fatalf("%s: bad output: %v", desc, err)
								}
							}
						}
					}
				}()
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Fatalf("inference panicked: %s: %v", desc, p)
						}
					}()
					types := make([]*ir.Type, len(in))
					cst := make([]*ir.Tensor, len(in))
					val := make([]ir.Shape, len(in))
					for i, x := range in {
						if x == nil {
							continue
						}
						switch r.Intn(3) {
						case 0:
							types[i], cst[i] = x.Type(), x
						case 1:
							types[i] = &ir.Type{DType: x.DType}
						default:
							types[i] = x.Type()
							if len(types[i].Shape) > 0 {
								types[i].Shape[0] = ir.Sym("N")
							}
							val[i] = ops.ValueOf(x)
						}
					}
					_ = o.Infer(ops.NewInferCtx(n, opset, types, cst, val))
				}()
			}
		}
	}
}
