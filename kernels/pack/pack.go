// Package pack lays matrices out for the register-tiled GEMMs of kernels/f32
// and kernels/i8: A in mr-row strips (for every p, the mr values A[i][p]),
// B in nr-column strips (for every p, the nr values B[p][j]), zero-padded
// past the last row or column. Packing absorbs transposes, im2col and the
// decoding of 8-bit codes through a 256-entry table (uint8 zero points,
// E4M3), so the micro-kernels see one layout. The functions are generic
// over the element types instead of copied per dtype.
package pack

// MaxNR bounds the strip width of any micro-kernel.
const MaxNR = 32

// Src are element types packing reads; Dst what micro-kernels consume.
type Src interface{ ~int8 | ~uint8 | ~float32 }
type Dst interface{ ~int8 | ~int16 | ~float32 }

// load converts one element: through lut when given (8-bit codes), else by
// value conversion.
func load[S Src, D Dst](v S, lut *[256]D) D {
	if lut != nil {
		return lut[uint8(v)]
	}
	return D(v)
}

// ASize is the length of m×k packed A with mr-row strips.
func ASize(m, k, mr int) int { return (m + mr - 1) / mr * mr * k }

// BSize is the length of k×n packed B with nr-column strips.
func BSize(k, n, nr int) int { return (n + nr - 1) / nr * nr * k }

// A packs rows [0,m) of A, A[i][p] = a[i*rs+p*cs].
func A[S Src, D Dst](dst []D, a []S, lut *[256]D, m, k, rs, cs, mr int) {
	for s := 0; s < m; s += mr {
		strip := dst[s*k : s*k+mr*k]
		for i := 0; i < mr; i++ {
			if s+i >= m {
				for p := 0; p < k; p++ {
					strip[p*mr+i] = 0
				}
				continue
			}
			base := (s + i) * rs
			for p := 0; p < k; p++ {
				strip[p*mr+i] = load(a[base+p*cs], lut)
			}
		}
	}
}

// B packs columns [0,n) of B, B[p][j] = b[p*rs+j*cs].
func B[S Src, D Dst](dst []D, b []S, lut *[256]D, k, n, rs, cs, nr int) {
	for t := 0; t < n; t += nr {
		strip := dst[t*k : t*k+nr*k]
		cols := min(nr, n-t)
		if cs == 1 {
			for p := 0; p < k; p++ {
				d := strip[p*nr : p*nr+nr]
				src := b[p*rs+t : p*rs+t+cols]
				for j, v := range src {
					d[j] = load(v, lut)
				}
				clear(d[cols:])
			}
			continue
		}
		for j := 0; j < nr; j++ {
			if j >= cols {
				for p := 0; p < k; p++ {
					strip[p*nr+j] = 0
				}
				continue
			}
			base := (t + j) * cs
			for p := 0; p < k; p++ {
				strip[p*nr+j] = load(b[base+p*rs], lut)
			}
		}
	}
}
