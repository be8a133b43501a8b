package layout

import (
	"unsafe"

	"github.com/kilnml/kiln/ir"
)

// stridedCopy fills dst (row-major over dims) from src, where output
// coordinate c reads src element base + Σ c[k]*strides[k]. Transpose, Slice
// (strides times steps, possibly negative), Expand (stride 0 on broadcast
// axes), Tile and DepthToSpace are all this one loop.
func stridedCopy(dst, src *ir.Tensor, dims, strides []int64, base int64) {
	dims, strides = coalesce(dims, strides)
	n := prod(dims)
	if n == 0 {
		return
	}
	r := len(dims)
	if r == 0 {
		copyElem(dst, 0, src, base)
		return
	}
	inner, innerStride := dims[r-1], strides[r-1]
	coord := make([]int64, r-1)
	off := base
	for o := int64(0); o < n; o += inner {
		if innerStride == 1 {
			copyRun(dst, o, src, off, inner)
		} else {
			copyStrided(dst, o, src, off, inner, innerStride)
		}
		for ax := r - 2; ax >= 0; ax-- {
			coord[ax]++
			off += strides[ax]
			if coord[ax] < dims[ax] {
				break
			}
			off -= coord[ax] * strides[ax]
			coord[ax] = 0
		}
	}
}

// coalesce merges neighbouring axes that walk memory as one (and drops
// size-1 axes), so the loop above runs over as few, long axes as possible.
func coalesce(dims, strides []int64) ([]int64, []int64) {
	var d, s []int64
	for i := range dims {
		if dims[i] == 1 {
			continue
		}
		if k := len(d) - 1; k >= 0 && s[k] == strides[i]*dims[i] {
			d[k] *= dims[i]
			s[k] = strides[i]
			continue
		}
		d = append(d, dims[i])
		s = append(s, strides[i])
	}
	if len(d) == 0 && len(dims) > 0 {
		for _, x := range dims {
			if x == 0 {
				return []int64{0}, []int64{0}
			}
		}
		return []int64{1}, []int64{1}
	}
	return d, s
}

// copyStrided copies n elements src[si + k*step] to dst[di + k].
func copyStrided(dst *ir.Tensor, di int64, src *ir.Tensor, si, n, step int64) {
	if src.DType == ir.String || src.DType.IsSubByte() {
		for k := int64(0); k < n; k++ {
			copyElem(dst, di+k, src, si+k*step)
		}
		return
	}
	ok := true
	switch src.DType.Bits() {
	case 8:
		stridedRun(dst.Data, src.Data, di, si, n, step)
	case 16:
		ok = stridedWords[uint16](dst, src, di, si, n, step)
	case 32:
		ok = stridedWords[uint32](dst, src, di, si, n, step)
	case 64:
		ok = stridedWords[uint64](dst, src, di, si, n, step)
	default:
		ok = false
	}
	if !ok {
		for k := int64(0); k < n; k++ {
			copyElem(dst, di+k, src, si+k*step)
		}
	}
}

func stridedWords[T any](dst, src *ir.Tensor, di, si, n, step int64) bool {
	d, s := words[T](dst), words[T](src)
	if d == nil || s == nil {
		return false
	}
	stridedRun(d, s, di, si, n, step)
	return true
}

func stridedRun[T any](d, s []T, di, si, n, step int64) {
	d = d[di : di+n]
	for k := range d {
		d[k] = s[si+int64(k)*step]
	}
}

// words views a tensor's bytes as fixed-width words, or returns nil when
// the data is not aligned for them (ir makes 8-byte aligned data; a tensor
// built elsewhere may not be, and then callers copy element by element).
func words[T any](t *ir.Tensor) []T {
	var z T
	w := int(unsafe.Sizeof(z))
	if len(t.Data) < w || uintptr(unsafe.Pointer(&t.Data[0]))%uintptr(w) != 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&t.Data[0])), len(t.Data)/w)
}
