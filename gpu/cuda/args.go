package cuda

import (
	"math"
	"unsafe"
)

// MaxArgs is the most kernel parameters Args holds.
const MaxArgs = 40

// Args packs kernel parameters the way cuLaunchKernel reads them: one
// pointer per parameter, each to a slot holding the value in the C type's
// size (little-endian, so a 4-byte int sits in the slot's low bytes).
type Args struct {
	slots [MaxArgs]uint64
	n     int
	ptrs  [MaxArgs]unsafe.Pointer
}

// NewArgs packs values: DevPtr, uint64, int64 (8 bytes), int, int32,
// uint32 (4 bytes; int must fit int32), float32 (4 bytes), float64.
// It panics on another type or more than MaxArgs values: kernel signatures
// are fixed in kiln's source, so that is a programming error.
func NewArgs(vals ...any) *Args {
	a := &Args{}
	for _, v := range vals {
		a.Add(v)
	}
	return a
}

// Add appends one parameter.
func (a *Args) Add(v any) *Args {
	if a.n == MaxArgs {
		panic("cuda: too many kernel arguments")
	}
	var s uint64
	switch x := v.(type) {
	case DevPtr:
		s = uint64(x)
	case uint64:
		s = x
	case int64:
		s = uint64(x)
	case int:
		if x != int(int32(x)) {
			panic("cuda: int kernel argument does not fit int32")
		}
		s = uint64(uint32(int32(x)))
	case int32:
		s = uint64(uint32(x))
	case uint32:
		s = uint64(x)
	case float32:
		s = uint64(math.Float32bits(x))
	case float64:
		s = math.Float64bits(x)
	default:
		panic("cuda: unsupported kernel argument type")
	}
	a.slots[a.n] = s
	a.n++
	return a
}

// Len is the number of parameters.
func (a *Args) Len() int { return a.n }

// Slot returns the raw 8 bytes of parameter i (for tests).
func (a *Args) Slot(i int) uint64 { return a.slots[i] }

func (a *Args) pointers() []unsafe.Pointer {
	for i := 0; i < a.n; i++ {
		a.ptrs[i] = unsafe.Pointer(&a.slots[i])
	}
	return a.ptrs[:a.n]
}
