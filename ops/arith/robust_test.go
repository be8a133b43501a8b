package arith

import (
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// arithOps lists every op this package registers.
func arithOps() []string {
	var names []string
	for n := range binaries {
		names = append(names, n)
	}
	for n := range variadics {
		names = append(names, n)
	}
	for n := range unaries {
		names = append(names, n)
	}
	for n := range reductions {
		names = append(names, n)
	}
	for n := range normalizers {
		names = append(names, n)
	}
	return append(names, "Pow", "Clip", "PRelu", "Where", "ArgMax", "ArgMin")
}

// Every kernel and inference function must turn bad input into an error:
// no panic for any mix of dtypes, ranks, missing and extra inputs.
func TestNoPanicOnBadInput(t *testing.T) {
	pool := []*ir.Tensor{
		nil,
		f32(dims(2, 3), 1, 2, 3, 4, 5, 6),
		f32(dims(0, 3)),
		f32(nil, 1),
		i64(dims(2), 0, -1),
		ints(ir.Int8, dims(3), 0, 1, 2),
		u64(dims(1), 0),
		bools(dims(2, 1), true, false),
		strs(dims(2), "a", "b"),
		ir.NewTensor(ir.Complex64, dims(2)),
		ir.NewTensor(ir.Float16, dims(3, 1)),
		ints(ir.Int4, dims(3), -1, 0, 7),
	}
	for _, name := range arithOps() {
		for _, opset := range []int64{7, 11, 13, 18, 22} {
			op, err := ops.Lookup("", name, opset)
			if err != nil {
				continue
			}
			most := 2
			if name == "Where" || name == "Clip" || name == "Sum" {
				most = 3
			}
			for n := 0; n <= most; n++ {
				combos := 1
				for i := 0; i < n; i++ {
					combos *= len(pool)
				}
				for k := 0; k < combos; k++ {
					in := make([]*ir.Tensor, n)
					node := &ir.Node{Name: "n", OpType: name, Outputs: []string{"y"}}
					types := make([]*ir.Type, n)
					for i, c := 0, k; i < n; i, c = i+1, c/len(pool) {
						in[i] = pool[c%len(pool)]
						node.Inputs = append(node.Inputs, "")
						if in[i] != nil {
							node.Inputs[i] = "x"
							types[i] = in[i].Type()
						}
					}
					func() {
						defer func() {
							if r := recover(); r != nil {
								t.Fatalf("%s opset %d on %v: panic %v", name, opset, in, r)
							}
						}()
						outs, err := op.Run(ops.NewCtx(node, opset), in)
						if err == nil {
							for _, o := range outs {
								if cerr := o.Check(); cerr != nil {
									t.Fatalf("%s opset %d on %v: bad output %v", name, opset, in, cerr)
								}
							}
						}
						_ = op.Infer(ops.NewInferCtx(node, opset, types, in, nil))
					}()
				}
			}
		}
	}
}
