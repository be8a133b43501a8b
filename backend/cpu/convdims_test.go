package cpu

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/pack"
)

func TestConvOutputDims(t *testing.T) {
	x := ir.NewTensor(ir.Float32, []int64{2, 3, 9, 9})
	g := pack.Conv2D{OH: 7, OW: 5}
	for _, tc := range []struct {
		in          []*ir.Tensor
		resid, pool bool
		want, err   string
	}{
		{in: []*ir.Tensor{x}, want: "[2 4 7 5]"},
		{in: []*ir.Tensor{x}, pool: true, want: "[2 4 3 2]"},
		{in: []*ir.Tensor{x, ir.NewTensor(ir.Float32, []int64{2, 4, 7, 5})}, resid: true, want: "[2 4 7 5]"},
		{in: []*ir.Tensor{x, ir.NewTensor(ir.Float32, []int64{2, 4, 7, 4})}, resid: true, err: "does not match"},
		{in: []*ir.Tensor{x, nil}, resid: true, err: "residual input is missing"},
		{in: []*ir.Tensor{x}, resid: true, err: "residual input is missing"},
	} {
		out, err := convOutputDims(tc.in, 4, g, tc.resid, tc.pool)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: err %v, want %q", tc, err, tc.err)
			}
			continue
		}
		if err != nil || fmt.Sprint(out) != tc.want {
			t.Errorf("%+v: %v %v, want %s", tc, out, err, tc.want)
		}
	}
	if _, err := convOutputDims([]*ir.Tensor{x}, 4, pack.Conv2D{OH: 1, OW: 5}, false, true); err == nil {
		t.Error("a 1-row output took a 2x2 pool")
	}
}
