package engine

import "unsafe"

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// offsetIn returns the index of sub's first byte inside buf (sub must be a
// subslice of buf).
func offsetIn(buf, sub []byte) int {
	if len(sub) == 0 && cap(sub) == 0 {
		return 0
	}
	return int(uintptrOf(sub[:1:1]) - uintptrOf(buf[:1:1]))
}
