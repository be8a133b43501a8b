package winograd

// A program is a 1-D transform as a straight-line sequence of float32
// operations over numbered slots: slots [0, n) hold the inputs, each step
// writes a new slot, and outs names the result slots. The Go twins
// interpret these programs; kernels/avx/_gen/cmd/winograd emits the same
// steps as AVX-512 instructions (VADDPS, VSUBPS, VMULPS by a broadcast
// constant), which keeps both bit-identical. Multiplications by 2, 4 and 8
// are exact; by 5 they round once. No step is a fused multiply-add.
type program struct {
	in    int
	steps []step
	outs  []int
}

type step struct {
	op   byte // '+': a+b, '-': a−b, '*': a·c
	a, b int
	c    float32
}

// Slots are numbered in order: inputs, then one per step.
func (p *program) slots() int { return p.in + len(p.steps) }

// The input transforms (rows of Bᵀ applied to a column or row of the
// patch) and output transforms (rows of Aᵀ). F(2,3) uses the points
// 0, 1, −1; F(4,3) the points 0, ±1, ±2 (Lavin & Gray's matrices):
//
//	F2 Bᵀ: [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]      Aᵀ: [1 1 1 0; 0 1 −1 −1]
//	F4 Bᵀ: [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0;
//	        0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
//	F4 Aᵀ: [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
var (
	inputF2 = program{in: 4, steps: []step{
		{'-', 0, 2, 0}, // 4: d0−d2
		{'+', 1, 2, 0}, // 5: d1+d2
		{'-', 2, 1, 0}, // 6: d2−d1
		{'-', 1, 3, 0}, // 7: d1−d3
	}, outs: []int{4, 5, 6, 7}}

	outputF2 = program{in: 4, steps: []step{
		{'+', 0, 1, 0}, // 4: m0+m1
		{'+', 4, 2, 0}, // 5: (m0+m1)+m2
		{'-', 1, 2, 0}, // 6: m1−m2
		{'-', 6, 3, 0}, // 7: (m1−m2)−m3
	}, outs: []int{5, 7}}

	inputF4 = program{in: 6, steps: []step{
		{'*', 2, 0, 5},   // 6: 5·d2
		{'-', 4, 6, 0},   // 7: d4−5·d2
		{'*', 0, 0, 4},   // 8: 4·d0
		{'+', 7, 8, 0},   // 9: r0 = (d4−5·d2)+4·d0
		{'+', 1, 2, 0},   // 10: d1+d2
		{'*', 10, 0, 4},  // 11: 4·(d1+d2)
		{'+', 3, 4, 0},   // 12: d3+d4
		{'-', 12, 11, 0}, // 13: r1 = (d3+d4)−4·(d1+d2)
		{'-', 1, 2, 0},   // 14: d1−d2
		{'*', 14, 0, 4},  // 15: 4·(d1−d2)
		{'-', 4, 3, 0},   // 16: d4−d3
		{'+', 16, 15, 0}, // 17: r2 = (d4−d3)+4·(d1−d2)
		{'-', 3, 1, 0},   // 18: d3−d1
		{'*', 18, 0, 2},  // 19: 2·(d3−d1)
		{'-', 4, 2, 0},   // 20: d4−d2
		{'+', 20, 19, 0}, // 21: r3 = (d4−d2)+2·(d3−d1)
		{'-', 20, 19, 0}, // 22: r4 = (d4−d2)−2·(d3−d1)
		{'*', 3, 0, 5},   // 23: 5·d3
		{'-', 5, 23, 0},  // 24: d5−5·d3
		{'*', 1, 0, 4},   // 25: 4·d1
		{'+', 24, 25, 0}, // 26: r5 = (d5−5·d3)+4·d1
	}, outs: []int{9, 13, 17, 21, 22, 26}}

	outputF4 = program{in: 6, steps: []step{
		{'+', 1, 2, 0},  // 6: s12
		{'-', 1, 2, 0},  // 7: d12
		{'+', 3, 4, 0},  // 8: s34
		{'-', 3, 4, 0},  // 9: d34
		{'+', 0, 6, 0},  // 10: m0+s12
		{'+', 10, 8, 0}, // 11: o0 = (m0+s12)+s34
		{'*', 9, 0, 2},  // 12: 2·d34
		{'+', 7, 12, 0}, // 13: o1 = d12+2·d34
		{'*', 8, 0, 4},  // 14: 4·s34
		{'+', 6, 14, 0}, // 15: o2 = s12+4·s34
		{'*', 9, 0, 8},  // 16: 8·d34
		{'+', 7, 16, 0}, // 17: d12+8·d34
		{'+', 17, 5, 0}, // 18: o3 = (d12+8·d34)+m5
	}, outs: []int{11, 13, 15, 18}}
)

func inputProgram(k Kind) *program {
	if k == F2 {
		return &inputF2
	}
	return &inputF4
}

func outputProgram(k Kind) *program {
	if k == F2 {
		return &outputF2
	}
	return &outputF4
}

// run executes p over lanes: in[i] is input i's lanes; the outputs go to
// out[o] (which may alias inputs: every input is read before the first
// output is written). s is scratch of p.slots() rows.
func (p *program) run(s [][Lanes]float32, in, out []*[Lanes]float32) {
	for i := 0; i < p.in; i++ {
		s[i] = *in[i]
	}
	for n, st := range p.steps {
		d, a, b := &s[p.in+n], &s[st.a], &s[st.b]
		switch st.op {
		case '+':
			for l := range d {
				d[l] = a[l] + b[l]
			}
		case '-':
			for l := range d {
				d[l] = a[l] - b[l]
			}
		default:
			for l := range d {
				d[l] = a[l] * st.c
			}
		}
	}
	for o, slot := range p.outs {
		*out[o] = s[slot]
	}
}

// Transform matrices in float64 (weight transform, tests and error bounds).
var (
	gF2 = [][]float64{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}
	gF4 = [][]float64{
		{1.0 / 4, 0, 0},
		{-1.0 / 6, -1.0 / 6, -1.0 / 6},
		{-1.0 / 6, 1.0 / 6, -1.0 / 6},
		{1.0 / 24, 1.0 / 12, 1.0 / 6},
		{1.0 / 24, -1.0 / 12, 1.0 / 6},
		{0, 0, 1},
	}
	btF2 = [][]float64{{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}}
	btF4 = [][]float64{
		{4, 0, -5, 0, 1, 0},
		{0, -4, -4, 1, 1, 0},
		{0, 4, -4, -1, 1, 0},
		{0, -2, -1, 2, 1, 0},
		{0, 2, -1, -2, 1, 0},
		{0, 4, 0, -5, 0, 1},
	}
	atF2 = [][]float64{{1, 1, 1, 0}, {0, 1, -1, -1}}
	atF4 = [][]float64{
		{1, 1, 1, 1, 1, 0},
		{0, 1, -1, 2, -2, 0},
		{0, 1, 1, 4, 4, 0},
		{0, 1, -1, 8, -8, 1},
	}
)

// Matrices returns G (t×3), Bᵀ (t×t) and Aᵀ (m×t) of kind k.
func Matrices(k Kind) (g, bt, at [][]float64) {
	if k == F2 {
		return gF2, btF2, atF2
	}
	return gF4, btF4, atF4
}
