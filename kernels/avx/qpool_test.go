package avx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/kilnml/kiln/kernels/pack"
)

// qpoolGuard is the bytes checked untouched after each pooled output row.
const qpoolGuard = 16

// TestQMicroPool checks the pooled micro-kernel (every variant) against
// the unpooled one: codes of each strip's 8×32 tile from QMicro, then the
// maximum of the four window members of each pooled output, bit for bit
// (the claim that the epilogue is monotone in the accumulator), over
// partial tiles (mr), pooled counts below, at and above a group (several
// strips per call), signed and unsigned codes, bias, clamp, zero points
// that saturate, deep and empty depths, and that nothing is stored past np
// or mr.
func TestQMicroPool(t *testing.T) {
	forEachQVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(81, 82))
		for _, k4 := range []int{0, 1, 3, 72, 500} {
			for _, mr := range []int{1, 5, MR} {
				for _, np := range []int{1, 5, PoolGroup, 13, 3 * PoolGroup} {
					for flags := range 8 { // bias, clamp, unsigned
						// rem, phw: one image, or planes of 11 or 8 outputs from the 5th or 8th on
						for _, img := range [][2]int{{np, 0}, {5, 11}, {8, 8}, {3, 8}} {
							t.Run(fmt.Sprint(k4, mr, np, flags, img), func(t *testing.T) { checkQMicroPool(t, r, k4, mr, np, flags, img[0], img[1]) })
						}
					}
				}
			}
		}
	})
}

func checkQMicroPool(t *testing.T, r *rand.Rand, k4, mr, np, flags, rem, phw int) {
	groups := (np + PoolGroup - 1) / PoolGroup
	a := make([]int8, k4*4*MR)
	for i := range a {
		a[i] = int8(r.IntN(255) - 127)
	}
	b := make([]uint8, groups*k4*4*NR)
	for i := range b {
		b[i] = uint8(r.IntN(256))
	}
	corr, mult, bias := make([]int32, MR), make([]float32, MR), make([]float32, MR)
	for i := range MR {
		corr[i] = int32(r.IntN(2000000) - 1000000)
		mult[i] = 1e-6 + 1e-4*r.Float32()
		bias[i] = float32(r.NormFloat64())
	}
	if k4 == 0 {
		mult[0] = math.MaxFloat32 // still positive and finite: monotone
	}
	q := QEpi{Corr: &corr[0], Mult: &mult[0], Bias: &bias[0], Flags: QQuant, YScale: 0.05, YZero: 0, Lo: -1, Hi: 3}
	q.QLo, q.QHi = -128, 127
	if flags&1 != 0 {
		q.Flags |= QBias
	}
	if flags&2 != 0 {
		q.Flags |= QClamp
	}
	if flags&4 != 0 {
		q.Flags |= QUnsigned
		q.YZero = 100
		q.QLo, q.QHi = -100, 155
	}
	// outputs: row i's pooled output P at i·ldo + at(P), past the last
	// output a guard band; the images' planes jump bytes apart
	jump := 0
	at := func(p int) int { return p }
	if np > rem {
		jump = 3 * (MR * phw)
		at = func(p int) int {
			if p < rem {
				return p
			}
			return p + (1+(p-rem)/phw)*jump
		}
	}
	ldo := np + qpoolGuard
	if jump != 0 {
		ldo = phw
	}
	size := (MR-1)*ldo + at(np-1) + 1 + qpoolGuard
	got := make([]byte, size)
	for i := range got {
		got[i] = 0xA5
	}
	want := append([]byte(nil), got...)
	QMicroPool(k4, a, b, unsafe.Pointer(&got[0]), ldo, mr, np, &q, rem, phw, jump)
	for s := range groups {
		// the reference: the unpooled tile's codes, pooled over the members
		var tile [MR * NR]byte
		QMicro(k4, a, b[s*k4*4*NR:], unsafe.Pointer(&tile[0]), NR, mr, NR, &q)
		for i := range mr {
			for j := range PoolGroup {
				p := s*PoolGroup + j
				if p >= np {
					continue
				}
				w := tile[i*NR+j]
				for f := 1; f < 4; f++ {
					c := tile[i*NR+f*PoolGroup+j]
					if q.Flags&QUnsigned != 0 && c > w || q.Flags&QUnsigned == 0 && int8(c) > int8(w) {
						w = c
					}
				}
				want[i*ldo+at(p)] = w
			}
		}
	}
	for i := range got { // every code where it belongs, every other byte untouched
		if got[i] != want[i] {
			t.Fatalf("byte %d (row %d, offset %d): %#x, want %#x", i, i/ldo, i%ldo, got[i], want[i])
		}
	}
}

// TestQPoolable: only epilogues that are non-decreasing in the accumulator.
func TestQPoolable(t *testing.T) {
	ok := QLayer{Mult: []float32{1e-3, 2}, Quant: true, YScale: 0.1}
	if !QPoolable(&ok) {
		t.Fatal("a plain code layer is not poolable")
	}
	for name, f := range map[string]func(l *QLayer){
		"float out":    func(l *QLayer) { l.Quant = false },
		"activation":   func(l *QLayer) { l.Act = func(y float32) float32 { return y } },
		"per column":   func(l *QLayer) { l.Col = true },
		"zero mult":    func(l *QLayer) { l.Mult[1] = 0 },
		"negative":     func(l *QLayer) { l.Mult[0] = -1e-3 },
		"inf mult":     func(l *QLayer) { l.Mult[1] = float32(math.Inf(1)) },
		"nan mult":     func(l *QLayer) { l.Mult[1] = float32(math.NaN()) },
		"zero y_scale": func(l *QLayer) { l.YScale = 0 },
	} {
		l := ok
		l.Mult = append([]float32(nil), ok.Mult...)
		f(&l)
		if QPoolable(&l) {
			t.Errorf("%s: poolable", name)
		}
	}
}

// TestQIm2colPooled checks both pooled packers and QPoolPlan against the natural-order
// ones: strip column f·PoolGroup+j of the pooled packing is column
// PoolGroupPixels(...)[f·PoolGroup+j] of the natural im2col (all
// variants; padding, strides, odd sizes, pooled rows wider and narrower
// than a group, starts inside a row; columns of absent pooled outputs are
// not compared).
func TestQIm2colPooled(t *testing.T) {
	geoms := []pack.Conv2D{
		{C: 32, H: 13, W: 13, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, Group: 1},              // simplecnn conv2
		{C: 1, H: 28, W: 28, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, Group: 1},               // simplecnn conv1 (rows)
		{C: 3, H: 23, W: 41, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PT: 1, PL: 1, Group: 1}, // rows, padded
		{C: 2, H: 17, W: 19, KH: 5, KW: 5, SH: 2, SW: 2, DH: 1, DW: 1, PT: 2, PL: 2, Group: 1}, // rows, stride 2: tables
		{C: 6, H: 9, W: 11, KH: 3, KW: 3, SH: 2, SW: 2, DH: 1, DW: 1, PT: 1, PL: 1, Group: 2},  // quads, groups, stride 2
		{C: 8, H: 6, W: 5, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, Group: 1},                 // 1×1
		{C: 5, H: 12, W: 70, KH: 3, KW: 2, SH: 1, SW: 1, DH: 2, DW: 2, PT: 2, PL: 1, Group: 1}, // dilated quads
	}
	forEachQVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(83, 84))
		for gi, g := range geoms {
			g.OH = (g.H+2*g.PT-(g.KH-1)*g.DH-1)/g.SH + 1
			g.OW = (g.W+2*g.PL-(g.KW-1)*g.DW-1)/g.SW + 1
			g.M = g.Group
			x := make([]byte, g.C*g.H*g.W)
			for i := range x {
				x[i] = byte(r.IntN(256))
			}
			pooled := (g.OH / 2) * (g.OW / 2)
			cg := g.C / g.Group
			rows := cg < 4 && g.KW >= 3 && g.DW == 1
			if want := gi != 6; NewQPoolPlan(&g, rows, 1, 0).direct != want {
				t.Fatalf("geometry %d: direct plan %v, want %v", gi, !want, want)
			}
			for grp := range g.Group {
				var img []byte
				var k int
				if rows {
					ph, pw := QPadSize(&g)
					img = make([]byte, cg*ph*pw)
					QPadImage(img, x, &g, grp, 0x80, 7)
					k = QRowsDepth(cg, g.KH, g.KW)
				} else {
					img = make([]byte, Cg4(cg)*QuadPlaneWords(g.H, g.W))
					ToQuadPlanes(img, x, &g, grp, 0x80, 7)
					k = QKTaps(&g)
				}
				ohw := g.OH * g.OW
				natural := make([]uint8, QBSize(k, ohw))
				if rows {
					QIm2colRows(natural, img, &g, 0, ohw)
				} else {
					QIm2colQuadPlanes(natural, img, &g, 0, ohw, 7)
				}
				k4 := K4(k)
				word := func(b []uint8, col, p int) uint32 {
					o := (col/NR)*NR*4*k4 + p*NR*4 + col%NR*4
					return uint32(b[o]) | uint32(b[o+1])<<8 | uint32(b[o+2])<<16 | uint32(b[o+3])<<24
				}
				for pi, p0 := range []int{0, 3, 8, pooled - 1, 0, 8, 16} {
					planned := pi >= 4 // the plan's segments (or its fallback to the gathers)
					if p0 < 0 || p0 >= pooled {
						continue
					}
					np := pooled - p0
					got := make([]uint8, QBSize(k, 4*((np+PoolGroup-1)/PoolGroup*PoolGroup))+qpoolGuard)
					for i := range got {
						got[i] = 0xEE
					}
					n := len(got) - qpoolGuard
					switch {
					case planned:
						NewQPoolPlan(&g, rows, 1, len(img)).Pack(got[:n], img, p0, np, 7)
					case rows:
						QIm2colRowsPooled(got[:n], img, &g, p0, np)
					default:
						QIm2colQuadPlanesPooled(got[:n], img, &g, p0, np, 7)
					}
					for i := n; i < len(got); i++ {
						if got[i] != 0xEE {
							t.Fatalf("geometry %d: guard byte %d written", gi, i-n)
						}
					}
					var pix [NR]int32
					for s := 0; s < np; s += PoolGroup {
						PoolGroupPixels(&pix, g.OW/2, g.OW, p0+s, min(PoolGroup, np-s))
						for c, px := range pix {
							if px < 0 {
								continue
							}
							for p := range k4 {
								if w, v := word(got, 4*s+c, p), word(natural, int(px), p); w != v {
									t.Fatalf("geometry %d group %d p0 %d planned %v: strip %d column %d (pixel %d) quad %d = %#x, want %#x",
										gi, grp, p0, planned, s/PoolGroup, c, px, p, w, v)
								}
							}
						}
					}
				}
			}
		}
	})
}

// TestQPoolPlanImages: a direct plan over several images (pooled outputs
// numbered across them, groups running from one image into the next)
// packs what one-image packing gives for each output, for 1–4 images and
// both orders, starting at every group of the band.
func TestQPoolPlanImages(t *testing.T) {
	geoms := []pack.Conv2D{
		{C: 32, H: 13, W: 13, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, Group: 1}, // 25 pooled per image
		{C: 1, H: 28, W: 28, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, Group: 1},  // 169
		{C: 3, H: 9, W: 11, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PT: 1, PL: 1, Group: 1},
	}
	forEachQVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(85, 86))
		for gi, g := range geoms {
			g.OH = (g.H+2*g.PT-(g.KH-1)*g.DH-1)/g.SH + 1
			g.OW = (g.W+2*g.PL-(g.KW-1)*g.DW-1)/g.SW + 1
			g.M = 1
			cg := g.C / g.Group
			rows := cg < 4
			var plane, k int
			if rows {
				ph, pw := QPadSize(&g)
				plane, k = cg*ph*pw, QRowsDepth(cg, g.KH, g.KW)
			} else {
				plane, k = Cg4(cg)*QuadPlaneWords(g.H, g.W)*4, QKTaps(&g)
			}
			k4 := K4(k)
			phw := (g.OH / 2) * (g.OW / 2)
			for images := 1; images <= 4; images++ {
				x := make([]byte, images*g.C*g.H*g.W)
				for i := range x {
					x[i] = byte(r.IntN(256))
				}
				imgs := make([]byte, images*plane)
				one := make([][]uint8, images) // each image's own pooled packing
				for b := range images {
					img := imgs[b*plane : (b+1)*plane]
					xb := x[b*g.C*g.H*g.W:]
					if rows {
						QPadImage(img, xb, &g, 0, 0x80, 7)
					} else {
						ToQuadPlanes(img, xb, &g, 0, 0x80, 7)
					}
					one[b] = make([]uint8, QBSize(k, 4*(phw+PoolGroup)))
					NewQPoolPlan(&g, rows, 1, plane).Pack(one[b], img, 0, phw, 7)
				}
				p := NewQPoolPlan(&g, rows, images, plane)
				if !p.Direct() {
					t.Fatalf("geometry %d: no direct plan", gi)
				}
				total := images * phw
				word := func(buf []uint8, col, q int) uint32 {
					o := (col/NR)*NR*4*k4 + q*NR*4 + col%NR*4
					return uint32(buf[o]) | uint32(buf[o+1])<<8 | uint32(buf[o+2])<<16 | uint32(buf[o+3])<<24
				}
				for p0 := 0; p0 < total; p0 += PoolGroup {
					np := total - p0
					got := make([]uint8, QBSize(k, 4*(np+PoolGroup)))
					p.Pack(got, imgs, p0, np, 7)
					for P := p0; P < total; P++ {
						b, pp := P/phw, P%phw
						for f := range 4 {
							gc := 4*((P-p0)/PoolGroup*PoolGroup) + f*PoolGroup + (P-p0)%PoolGroup
							oc := 4*(pp/PoolGroup*PoolGroup) + f*PoolGroup + pp%PoolGroup
							for q := range k4 {
								if w, v := word(got, gc, q), word(one[b], oc, q); w != v {
									t.Fatalf("geometry %d, %d images, p0 %d: output %d member %d quad %d = %#x, want %#x", gi, images, p0, P, f, q, w, v)
								}
							}
						}
					}
				}
			}
		}
	})
}

// TestHmax3s2: the vectorized 3-wide stride-2 row max equals its Go twin
// (every variant, signed and unsigned codes, 1–100 outputs across the
// 31-output steps) and writes nothing past its outputs.
func TestHmax3s2(t *testing.T) {
	forEachQVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(89, 90))
		for n := 1; n <= 100; n++ {
			for _, unsigned := range []bool{false, true} {
				row := make([]byte, 2*n+1)
				for i := range row {
					row[i] = byte(r.IntN(256))
				}
				got := make([]byte, n+qpoolGuard)
				for i := range got {
					got[i] = 0xC3
				}
				want := make([]byte, n)
				hmax3s2(got[:n], row, unsigned)
				hmax3s2Generic(&want[0], &row[0], n, unsigned)
				for i := range got {
					if w := byte(0xC3); i < n && got[i] != want[i] || i >= n && got[i] != w {
						t.Fatalf("n %d unsigned %v: byte %d = %#x", n, unsigned, i, got[i])
					}
				}
			}
		}
	})
}

// TestToQuadPlanesRange: quad planes written in parts (as threads share
// one image) equal the whole ToQuadPlanes, channel counts with and without
// a partial last quad.
func TestToQuadPlanesRange(t *testing.T) {
	forEachQVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(91, 92))
		for _, c := range []int{4, 6, 16, 23} {
			g := pack.Conv2D{C: c, H: 7, W: 9, Group: 1}
			x := make([]byte, c*g.H*g.W)
			for i := range x {
				x[i] = byte(r.IntN(256))
			}
			q := Cg4(c) / 4
			size := q * QuadPlaneWords(g.H, g.W) * 4
			want, got := make([]byte, size), make([]byte, size)
			ToQuadPlanes(want, x, &g, 0, 0x80, 9)
			for parts := 1; parts <= q; parts++ {
				clear(got)
				for p := range parts {
					ToQuadPlanesRange(got, x, &g, 0, 0x80, 9, p*q/parts, (p+1)*q/parts)
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%d channels, %d parts: byte %d = %#x, want %#x", c, parts, i, got[i], want[i])
					}
				}
			}
		}
	})
}

// TestQGemmPoolShift: pooled codes from shift planes (QPoolShift.Build +
// QGemmPoolShift) equal those from packed strips (QPoolPlan.Pack +
// QGemmPool) byte for byte, every variant: bands of 1–3 images, pooled
// rows narrower and wider than a group, 3×3 and 2×2 kernels, row counts
// below and above a tile, a guard band after the output.
func TestQGemmPoolShift(t *testing.T) {
	geoms := []pack.Conv2D{
		{C: 32, H: 13, W: 13, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, Group: 1}, // simplecnn conv2: 5×5 pooled
		{C: 8, H: 24, W: 22, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, Group: 1},  // 11×10 pooled
		{C: 6, H: 9, W: 21, KH: 2, KW: 2, SH: 1, SW: 1, DH: 1, DW: 1, Group: 1},   // partial last quad, 4×10
	}
	forEachQVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(93, 94))
		for gi, g := range geoms {
			g.OH, g.OW = g.H-g.KH+1, g.W-g.KW+1
			if !qpoolShiftGeometry(&g) {
				t.Fatalf("geometry %d: no shift planes", gi)
			}
			phw := (g.OH / 2) * (g.OW / 2)
			plane := Cg4(g.C) * QuadPlaneWords(g.H, g.W)
			k := QKTaps(&g)
			for images := 1; images <= 3; images++ {
				for _, m := range []int{5, 19} {
					imgs := make([]byte, images*plane)
					for b := range images {
						x := make([]byte, g.C*g.H*g.W)
						for i := range x {
							x[i] = byte(r.IntN(256))
						}
						ToQuadPlanes(imgs[b*plane:(b+1)*plane], x, &g, 0, 0x80, 3)
					}
					w := make([]int8, m*k)
					for i := range w {
						w[i] = int8(r.IntN(255) - 127)
					}
					ap := make([]int8, QASize(m, k))
					PackQA(ap, w, m, k)
					l := &QLayer{Corr: make([]int32, m), Mult: make([]float32, m), Bias: make([]float32, m), Clamp: true, Lo: 0, Hi: 50, Quant: true, YScale: 0.07}
					for i := range m {
						l.Corr[i] = int32(r.IntN(400000) - 200000)
						l.Mult[i] = 1e-4 + 1e-3*r.Float32()
						l.Bias[i] = float32(r.NormFloat64())
					}
					np := images * phw
					ld := phw
					size := images*m*phw + qpoolGuard
					want, got := make([]byte, size), make([]byte, size)
					for i := range got {
						want[i], got[i] = 0x5A, 0x5A
					}
					o := QOut{Q: want, Ld: ld, Jump: (m - 1) * phw}
					bp := make([]uint8, QBSize(k, 4*((np+PoolGroup-1)/PoolGroup*PoolGroup)))
					NewQPoolPlan(&g, false, images, plane).Pack(bp, imgs, 0, np, 3)
					QGemmPool(k, ap, m, bp, np, &o, l, 0, 0)
					s := NewQPoolShift(&g, images, plane)
					sp := make([]uint8, s.Size())
					s.Build(sp, imgs)
					o.Q = got
					QGemmPoolShift(k, ap, m, sp, s, np, &o, l, 0)
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("geometry %d, %d images, %d rows: byte %d = %#x, want %#x", gi, images, m, i, got[i], want[i])
						}
					}
				}
			}
		}
	})
}
