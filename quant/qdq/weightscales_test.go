package qdq

import (
	"testing"
)

// WeightScales (from QAT) replace max|w|/127; a wrong count is an error.
func TestWeightScales(t *testing.T) {
	m := convNet(13)
	x := randT([]int64{1, 2, 5, 5}, 9)
	rg := ranges(t, m, x)
	want := []float32{0.5, 0.25, 0.125, 0.0625}
	q, err := Insert(m, Options{Ranges: rg, WeightScales: map[string][]float32{"conv.w": want}, QuantizedWeights: true})
	if err != nil {
		t.Fatal(err)
	}
	inits := q.Graph.InitializerMap()
	found := false
	for _, n := range q.Graph.Nodes {
		if n.OpType == "DequantizeLinear" && inits[n.Inputs[0]] != nil && inits[n.Inputs[0]].Dims[0] == 4 && len(inits[n.Inputs[0]].Dims) == 4 {
			s := inits[n.Inputs[1]].F32()
			for i := range want {
				if s[i] != want[i] {
					t.Fatalf("scale[%d] = %v, want %v", i, s[i], want[i])
				}
			}
			found = true
		}
	}
	if !found {
		t.Fatal("no DequantizeLinear of the conv weight")
	}
	if _, err := Insert(m, Options{Ranges: rg, WeightScales: map[string][]float32{"conv.w": {1}}}); err == nil {
		t.Error("one scale for four channels accepted")
	}
}
