package avx

import (
	"math"
	"math/rand/v2"
	"testing"
)

// refPool2x2 is ONNX MaxPool 2×2/2 (floor) over one plane of codes, with
// explicit comparisons (first of equal values wins, irrelevant for
// integers).
func refPool2x2(x []byte, w, h int, unsigned bool) []byte {
	val := func(b byte) int {
		if unsigned {
			return int(b)
		}
		return int(int8(b))
	}
	var y []byte
	for r := 0; r+1 < h; r += 2 {
		for c := 0; c+1 < w; c += 2 {
			best := x[r*w+c]
			for _, i := range []int{r*w + c + 1, (r+1)*w + c, (r+1)*w + c + 1} {
				if val(x[i]) > val(best) {
					best = x[i]
				}
			}
			y = append(y, best)
		}
	}
	return y
}

func TestMaxPool2x2(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	// widths below, at and above the 32-output step (64 input bytes), odd
	// sizes (the last row/column is dropped), one-row and one-plane cases
	sizes := [][3]int{{2, 2, 1}, {3, 3, 2}, {1, 4, 1}, {4, 1, 1}, {26, 26, 5}, {11, 11, 3}, {63, 5, 2}, {64, 4, 3}, {65, 7, 2}, {66, 2, 1}, {130, 3, 2}, {200, 9, 1}}
	forEachQVariant(t, func(t *testing.T) {
		for _, sz := range sizes {
			for _, unsigned := range []bool{false, true} {
				w, h, planes := sz[0], sz[1], sz[2]
				x := make([]byte, w*h*planes)
				for i := range x {
					x[i] = byte(r.IntN(256))
				}
				if len(x) > 3 { // extremes
					x[0], x[1], x[2] = 0x80, 0x7f, 0xff
				}
				ow, oh := w/2, h/2
				const guard = 64
				y := make([]byte, ow*oh*planes+guard)
				for i := range y {
					y[i] = 0x5a
				}
				MaxPool2x2(y[:ow*oh*planes], x, w, h, planes, unsigned)
				var want []byte
				for p := 0; p < planes; p++ {
					want = append(want, refPool2x2(x[p*w*h:(p+1)*w*h], w, h, unsigned)...)
				}
				for i, v := range want {
					if y[i] != v {
						t.Fatalf("%dx%dx%d unsigned=%v: y[%d] = %d, want %d", w, h, planes, unsigned, i, y[i], v)
					}
				}
				for i := len(want); i < len(y); i++ {
					if y[i] != 0x5a {
						t.Fatalf("%dx%dx%d: wrote past the output at %d", w, h, planes, i)
					}
				}
			}
		}
	})
}

// refQuantize is ONNX QuantizeLinear in float64 after the float32
// division (as backend/cpu's portable reformat kernel).
func refQuantize(x, scale float32, zero int32, unsigned bool) byte {
	lo, hi := -128.0, 127.0
	if unsigned {
		lo, hi = 0, 255
	}
	q := math.RoundToEven(float64(x/scale)) + float64(zero)
	switch {
	case math.IsNaN(q):
		q = float64(zero)
	case q < lo:
		q = lo
	case q > hi:
		q = hi
	}
	if unsigned {
		return byte(q)
	}
	return byte(int8(q))
}

func TestQuantizeF32(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	type qp struct {
		scale    float32
		zero     int32
		unsigned bool
	}
	params := []qp{{0.0039215689, 0, false}, {0.1, 0, false}, {1, 0, false}, {0.05, -7, false}, {0.02, 128, true}, {1, 0, true}, {0.3, 255, true}, {0.3, 0, true}, {3e-8, 5, false}}
	forEachQVariant(t, func(t *testing.T) {
		for _, p := range params {
			var src []float32
			// every rounding tie of the code range and beyond (guard bands), both signs
			for k := -300; k <= 300; k++ {
				src = append(src, (float32(k)+0.5)*p.scale, float32(k)*p.scale, (float32(k)+0.49999997)*p.scale, nextUp(float32(k)+0.5)*p.scale)
			}
			src = append(src, 0, float32(math.Copysign(0, -1)), inf, -inf, nan, -nan, math.MaxFloat32, -math.MaxFloat32,
				math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, 1e-40, 2.5, -2.5, 126.5*p.scale, 127.5*p.scale, -128.5*p.scale, 255.5*p.scale)
			for range 500 {
				src = append(src, float32(r.NormFloat64())*100*p.scale)
			}
			for _, n := range []int{0, 1, 15, 16, 17, 31, 33, len(src)} {
				n = min(n, len(src))
				for _, off := range []int{0, 3} { // unaligned starts
					if off+n > len(src) {
						continue
					}
					s := src[off : off+n]
					dst := make([]byte, n+32)
					for i := range dst {
						dst[i] = 0xa5
					}
					QuantizeF32(dst[:n], s, p.scale, p.zero, p.unsigned)
					for i, x := range s {
						if want := refQuantize(x, p.scale, p.zero, p.unsigned); dst[i] != want {
							t.Fatalf("%+v: quantize(%g) = %d, want %d", p, x, dst[i], want)
						}
					}
					for i := n; i < len(dst); i++ {
						if dst[i] != 0xa5 {
							t.Fatalf("%+v n=%d: wrote past the end at %d", p, n, i)
						}
					}
				}
			}
		}
	})
}

func nextUp(x float32) float32 { return math.Nextafter32(x, float32(math.Inf(1))) }

func BenchmarkMaxPool2x2(b *testing.B) {
	// simplecnn@256's first pool: 256×32 planes of 26×26 int8 codes
	w, h, planes := 26, 26, 256*32
	x := make([]byte, w*h*planes)
	for i := range x {
		x[i] = byte(i * 2654435761 >> 13)
	}
	y := make([]byte, (w/2)*(h/2)*planes)
	for _, v := range QVariants() {
		b.Run(qvariantNames[v], func(b *testing.B) {
			saved := QVariant
			defer func() { QVariant = saved }()
			QVariant = v
			b.SetBytes(int64(len(x)))
			for b.Loop() {
				MaxPool2x2(y, x, w, h, planes, false)
			}
		})
	}
}

func BenchmarkQuantizeF32(b *testing.B) {
	src := make([]float32, 256*28*28) // simplecnn@256's input
	for i := range src {
		src[i] = float32(i%1000)/500 - 1
	}
	dst := make([]byte, len(src))
	for _, v := range QVariants() {
		b.Run(qvariantNames[v], func(b *testing.B) {
			saved := QVariant
			defer func() { QVariant = saved }()
			QVariant = v
			b.SetBytes(int64(4 * len(src)))
			for b.Loop() {
				QuantizeF32(dst, src, 0.0078, 0, false)
			}
		})
	}
}

func TestGatherQuads(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, c := range []struct{ rows, q, step int }{{1, 1, 4}, {3, 2, 4}, {9, 8, 4}, {49, 3, 4}, {5, 4, 7}} {
		src := make([]byte, 1000)
		for i := range src {
			src[i] = byte(r.IntN(256))
		}
		var tab [maxTaps][NR]int32
		hi := len(src) - 4 - (c.q-1)*c.step
		for i := range c.rows {
			for j := range NR {
				switch r.IntN(4) {
				case 0:
					tab[i][j] = -1
				case 1:
					tab[i][j] = int32(hi) // the last word
				default:
					tab[i][j] = int32(r.IntN(hi + 1))
				}
			}
		}
		var want []uint32
		for i := range c.rows {
			for q := range c.q {
				for j := range NR {
					o := tab[i][j]
					if o < 0 {
						want = append(want, 0xdeadbeef)
						continue
					}
					p := int(o) + q*c.step
					want = append(want, uint32(src[p])|uint32(src[p+1])<<8|uint32(src[p+2])<<16|uint32(src[p+3])<<24)
				}
			}
		}
		forEachQVariant(t, func(t *testing.T) {
			dst := make([]uint32, len(want)+NR)
			gatherQuads(dst, src, &tab, c.rows, c.q, c.step, 0xdeadbeef)
			for i, w := range want {
				if dst[i] != w {
					t.Fatalf("%+v: word %d = %#x, want %#x", c, i, dst[i], w)
				}
			}
			for _, v := range dst[len(want):] {
				if v != 0 {
					t.Fatalf("%+v: wrote past the strip rows", c)
				}
			}
		})
	}
}

func TestQPackPointwise(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 10))
	for _, c := range []struct{ hw, cg, j0, n int }{{1, 4, 0, 1}, {49, 8, 0, 49}, {49, 8, 17, 32}, {196, 12, 33, 100}, {3136, 4, 3000, 136}, {64, 16, 0, 64}, {70, 4, 1, 69}} {
		x := make([]byte, c.hw*c.cg)
		for i := range x {
			x[i] = byte(r.IntN(256))
		}
		forEachQVariant(t, func(t *testing.T) {
			for _, flip := range []byte{0, 0x80} {
				dst := make([]byte, QBSize(c.cg, c.n)+64)
				QPackPointwise(dst, x, c.hw, c.cg, c.j0, c.n, flip)
				k4 := c.cg / 4
				for j := 0; j < c.n; j++ {
					for k := 0; k < c.cg; k++ {
						s, jj := j/NR, j%NR
						got := dst[s*NR*4*k4+(k/4)*4*NR+jj*4+k%4]
						if want := x[k*c.hw+c.j0+j] ^ flip; got != want {
							t.Fatalf("%+v flip %#x: column %d channel %d = %d, want %d", c, flip, j, k, got, want)
						}
					}
				}
				for _, v := range dst[QBSize(c.cg, c.n):] {
					if v != 0 {
						t.Fatalf("%+v: wrote past the strips", c)
					}
				}
			}
		})
	}
}

func TestCodesToF32(t *testing.T) {
	src := make([]byte, 600)
	for i := range src {
		src[i] = byte(i * 37) // every code
	}
	forEachQVariant(t, func(t *testing.T) {
		for _, c := range []struct{ w, h, ldd int }{{1, 1, 1}, {15, 2, 20}, {16, 3, 16}, {17, 2, 40}, {56, 5, 90}, {300, 2, 301}} {
			for _, z := range []struct {
				zero     int32
				unsigned bool
			}{{0, false}, {-7, false}, {127, false}, {0, true}, {128, true}, {255, true}} {
				dst := make([]float32, (c.h-1)*c.ldd+c.w+16)
				CodesToF32(dst, c.ldd, src, c.w, c.h, z.zero, z.unsigned)
				for at, got := range dst {
					r, i := at/c.ldd, at%c.ldd
					want := float32(0) // between rows and past the end: untouched
					if r < c.h && i < c.w {
						v := int32(int8(src[r*c.w+i]))
						if z.unsigned {
							v = int32(src[r*c.w+i])
						}
						want = float32(v - z.zero)
					}
					if got != want {
						t.Fatalf("%+v %+v: dst[%d][%d] = %v, want %v", c, z, r, i, got, want)
					}
				}
			}
		}
	})
}

func TestSlideQuads(t *testing.T) {
	src := make([]byte, 80)
	for i := range src {
		src[i] = byte(i*29 + 7)
	}
	forEachQVariant(t, func(t *testing.T) {
		for _, stride := range []int{1, 2} {
			for n := 1; n <= NR; n++ {
				need := stride*(n-1) + 4
				for _, off := range []int{0, 1, 80 - need} { // the last case ends at the slice's end
					dst := make([]uint32, NR+4)
					slideQuads(dst, src[off:off+need], n, stride)
					for j := range dst {
						want := uint32(0)
						if j < n {
							p := off + stride*j
							want = uint32(src[p]) | uint32(src[p+1])<<8 | uint32(src[p+2])<<16 | uint32(src[p+3])<<24
						}
						if dst[j] != want {
							t.Fatalf("stride %d n=%d off=%d: dst[%d] = %#x, want %#x", stride, n, off, j, dst[j], want)
						}
					}
				}
			}
		}
	})
}

func TestCopyQuadWords(t *testing.T) {
	src := make([]uint32, 400)
	for i := range src {
		src[i] = uint32(i)*2654435761 + 1
	}
	const fill, guard = 0x5a5a5a5a, 0xdeadbeef
	forEachQVariant(t, func(t *testing.T) {
		for _, c := range []struct{ lo, hi, run, q, step int }{{0, 1, 1, 1, 4}, {0, 15, 15, 3, 64}, {0, 16, 16, 2, 100},
			{0, 17, 17, 4, 256}, {0, 32, 32, 8, 160}, {1, 14, 14, 3, 64}, {0, 13, 14, 5, 60}, {2, 30, 32, 2, 128},
			{0, 0, 7, 3, 64}, {5, 5, 9, 2, 64}, {17, 31, 31, 2, 128}, {3, 20, 25, 1, 4}} {
			dst := make([]uint32, c.q*NR+8)
			for i := range dst {
				dst[i] = guard
			}
			var s []uint32
			if c.hi > c.lo {
				s = src[7:] // column lo's word
			}
			copyQuadWords(dst, s, c.lo, c.hi, c.run, c.q, c.step, fill)
			for i := range c.q {
				for j := range NR {
					want := uint32(guard)
					switch {
					case j >= c.lo && j < c.hi:
						want = src[7+i*c.step/4+j-c.lo]
					case j < c.run:
						want = fill
					}
					if dst[i*NR+j] != want {
						t.Fatalf("%+v: dst[%d][%d] = %#x, want %#x", c, i, j, dst[i*NR+j], want)
					}
				}
			}
		}
	})
}
