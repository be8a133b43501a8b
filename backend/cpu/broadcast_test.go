package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// Broadcasting Add/Sub/Mul/Div/Where equal the reference bit for bit, at
// 1..3 threads, including NaN/Inf operands and scalars.
func TestBroadcastKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	shapes := [][3][]int64{
		{{2, 3, 4, 5}, {1, 3, 1, 5}, {4, 1}},
		{{1, 128, 16}, {3, 128, 16}, {}},           // symbolic-batch embedding sum
		{{2, 1, 1, 7}, {1}, {2, 1, 6, 7}},          // mask Where(cond, 0, -inf)
		{{}, {}, {}},                               // scalars
		{{5, 1}, {1, 6}, {5, 6}},                   // outer product shape
		{{3, 0, 2}, {1, 1, 2}, {3, 1, 1}},          // empty
		{{1, 1, 1, 1, 1, 1, 2, 3}, {3}, {2, 1}},    // rank 8
		{{4, 2, 1, 3}, {4, 2, 9, 3}, {1, 1, 9, 1}}, // middle broadcast
	}
	for si, s := range shapes {
		vals := func(dims []int64) *ir.Tensor {
			x := randF32(r, dims...)
			for i := range x.F32() {
				switch i % 11 {
				case 3:
					x.F32()[i] = float32(math.Inf(-1))
				case 7:
					x.F32()[i] = float32(math.NaN())
				case 9:
					x.F32()[i] = 0
				}
			}
			return x
		}
		for _, op := range []string{"Add", "Sub", "Mul", "Div", "Where"} {
			t.Run(fmt.Sprintf("%d/%s", si, op), func(t *testing.T) {
				var in []*ir.Tensor
				if op == "Where" {
					c := ir.NewTensor(ir.Bool, s[0])
					for i := range c.Data {
						c.Data[i] = byte(r.IntN(2))
					}
					in = []*ir.Tensor{c, vals(s[1]), vals(s[2])}
				} else {
					in = []*ir.Tensor{vals(s[0]), vals(s[1])}
				}
				n := node("", op, len(in))
				want := reference(t, n, in)
				l := layer(n, in, nil, want, engine.FP32)
				ts := broadcastBackend{}.Tactics(l)
				if len(ts) != 1 {
					t.Fatalf("no broadcast tactic")
				}
				first := execKernel(t, ts[0], l, in, 1)
				sameBits(t, "threads 1 vs reference", first, want)
				for th := 2; th <= 3; th++ {
					sameBits(t, fmt.Sprintf("threads %d", th), execKernel(t, ts[0], l, in, th), first)
				}
			})
		}
	}
}
