package cpu

import "unsafe"

func sizeof[T any](v T) uintptr { return unsafe.Sizeof(v) }

// bytesAs views b as n elements of T (b is 64-byte aligned context scratch
// or tensor data from ir.AlignedBytes).
func bytesAs[T any](b []byte, n int) []T {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// unsafeBytes views a float32 slice's memory as bytes.
func unsafeBytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
}
