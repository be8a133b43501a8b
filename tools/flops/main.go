// Command flops counts the multiply-accumulates of a model's convolutions
// and matrix products at a batch size (shapes from kiln's inference), the
// denominator of "achieved fraction of peak" in BENCHMARKS.md:
//
//	go run ./tools/flops [-batch N] MODEL.onnx
//
// prints the MACs per op type and GFLOP (2 per MAC) in total. Elementwise
// ops, pooling and normalizations are not counted (they are bandwidth, not
// FMA, work).
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
	_ "github.com/kilnml/kiln/ops/all"
)

func main() {
	batch := flag.Int64("batch", 1, "size of every input's first dimension when it is symbolic")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: flops [-batch N] MODEL.onnx")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	m, err := onnx.Load(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "flops:", err)
		os.Exit(1)
	}
	per, err := Count(m, *batch)
	if err != nil {
		fmt.Fprintf(os.Stderr, "flops: %s: %v\n", flag.Arg(0), err)
		os.Exit(1)
	}
	var ops []string
	var total int64
	for op, n := range per {
		ops = append(ops, op)
		total += n
	}
	sort.Strings(ops)
	for _, op := range ops {
		fmt.Printf("%-8s %d MACs\n", op, per[op])
	}
	fmt.Printf("total    %d MACs = %.6f GFLOP at batch %d\n", total, 2*float64(total)/1e9, *batch)
}

// Count returns the MACs of m's Conv, Gemm and MatMul nodes per op type,
// with every input's symbolic first dimension set to batch.
func Count(m *ir.Model, batch int64) (map[string]int64, error) {
	shapes := map[string]ir.Shape{}
	for _, in := range m.Graph.Inputs {
		if in.Type == nil || !in.Type.HasShape || len(in.Type.Shape) == 0 || in.Type.Shape[0].Param == "" {
			continue
		}
		s := append(ir.Shape{}, in.Type.Shape...)
		s[0] = ir.D(batch)
		shapes[in.Name] = s
	}
	inf, err := ops.Infer(m, ops.InferOptions{InputShapes: shapes})
	if inf == nil {
		return nil, err
	}
	dims := func(name string) ([]int64, error) {
		t := inf.Types[name]
		if t == nil || !t.HasShape {
			return nil, fmt.Errorf("no shape for %q", name)
		}
		d := make([]int64, len(t.Shape))
		for i, x := range t.Shape {
			if x.Param != "" {
				return nil, fmt.Errorf("%q has a symbolic dimension %q", name, x.Param)
			}
			d[i] = x.Value
		}
		return d, nil
	}
	prod := func(d []int64) int64 {
		p := int64(1)
		for _, v := range d {
			p *= v
		}
		return p
	}
	per := map[string]int64{}
	for _, n := range m.Graph.Nodes {
		if n.Domain != "" || (n.OpType != "Conv" && n.OpType != "Gemm" && n.OpType != "MatMul") {
			continue
		}
		y, err := dims(n.Outputs[0])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		a, err := dims(n.Inputs[0])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		var depth int64
		switch n.OpType {
		case "Conv": // each output: Cin/group · kernel taps; W is [Cout, Cin/group, k...]
			w, err := dims(n.Inputs[1])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n, err)
			}
			depth = prod(w[1:])
		case "Gemm":
			depth = a[1]
			if at := n.Attr("transA"); at != nil && at.I != 0 {
				depth = a[0]
			}
		case "MatMul":
			depth = a[len(a)-1]
		}
		per[n.OpType] += prod(y) * depth
	}
	return per, nil
}
