package cuda

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Programmatic dependent launch (Hopper, CUDA 11.8+): a kernel launched
// with CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION may start
// while the kernel before it in the stream is still running, once every
// block of that kernel has executed `griddepcontrol.launch_dependents`
// (or exited). Its blocks then wait in `griddepcontrol.wait` until the
// previous grid has finished and its memory operations are visible. What
// it saves is the launch latency between two dependent kernels (the next
// grid is already resident when the previous one ends) and the gap the
// previous kernel's last, partly empty wave leaves.
//
// The kernel must call griddepcontrol.wait before it reads anything the
// previous kernel wrote: kiln's kernels all start with pdl_enter()
// (kernels/common.cuh), which waits and then lets its own successor
// launch. A kernel without that wait must never be launched this way.

// cuLaunchKernelEx's structures (cuda.h, CUDA 12/13): CUlaunchConfig and
// one CUlaunchAttribute (id, 4 bytes of padding, a 64-byte value union).
type launchAttr struct {
	id    uint32
	_     uint32
	value [64]byte
}

type launchConfig struct {
	gx, gy, gz uint32
	bx, by, bz uint32
	shmem      uint32
	stream     uintptr
	attrs      *launchAttr
	numAttrs   uint32
	_          uint32
}

// CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
const attrProgrammaticSerialization = 6

var cuLaunchKernelEx func(cfg *launchConfig, f uintptr, params unsafe.Pointer, extra unsafe.Pointer) int32

// bindOptional resolves the driver symbols kiln can do without.
func bindOptional(lib uintptr) {
	if addr, err := purego.Dlsym(lib, "cuLaunchKernelEx"); err == nil && addr != 0 {
		purego.RegisterFunc(&cuLaunchKernelEx, addr)
	}
	if addr, err := purego.Dlsym(lib, "cuEventRecordWithFlags"); err == nil && addr != 0 {
		purego.RegisterFunc(&cuEventRecordWithFlags, addr)
	}
}

// PDLSupported reports whether d can launch kernels as programmatic
// dependents: compute capability 9.0 or later and a driver with
// cuLaunchKernelEx.
func (d *Device) PDLSupported() bool { return cuLaunchKernelEx != nil && d.Major >= 9 }

// SetPDL makes the stream's later kernel launches (Function.Launch)
// programmatic dependents of the kernel before them (see above); off by
// default. Only for kernels that wait with griddepcontrol.wait before
// reading their inputs, on a device where PDLSupported holds.
func (s *Stream) SetPDL(on bool) { s.pdl = on && cuLaunchKernelEx != nil }

// PDL reports whether the stream launches kernels as programmatic dependents.
func (s *Stream) PDL() bool { return s.pdl }

// launchPDL is Launch through cuLaunchKernelEx with the programmatic
// serialization attribute.
func (f *Function) launchPDL(s *Stream, grid, block [3]uint32, shmem uint32, pp unsafe.Pointer) error {
	attr := launchAttr{id: attrProgrammaticSerialization}
	attr.value[0] = 1 // programmaticStreamSerializationAllowed (an int)
	cfg := launchConfig{gx: grid[0], gy: grid[1], gz: grid[2], bx: block[0], by: block[1], bz: block[2],
		shmem: shmem, stream: s.h, attrs: &attr, numAttrs: 1}
	err := check("cuLaunchKernelEx("+f.Name+")", cuLaunchKernelEx(&cfg, f.h, pp, nil))
	runtime.KeepAlive(&attr)
	return err
}

// cuEventRecordWithFlags (CUDA 11.1+), for CU_EVENT_RECORD_EXTERNAL (1):
// recorded during a stream capture, the event becomes an event-record node
// of the graph, which records it at every launch (a plain record during a
// capture only orders the captured work).
var cuEventRecordWithFlags func(e uintptr, s uintptr, flags uint32) int32

const eventRecordExternal = 1

// ExternalRecordSupported reports whether RecordExternal is available.
func ExternalRecordSupported() bool { return cuEventRecordWithFlags != nil }

// RecordExternal records e on s; on a capturing stream it becomes a node
// of the graph, recorded at each of its launches.
func (e *Event) RecordExternal(s *Stream) error {
	if cuEventRecordWithFlags == nil {
		return fmt.Errorf("cuEventRecordWithFlags: not in this driver")
	}
	return check("cuEventRecordWithFlags", cuEventRecordWithFlags(e.h, s.h, eventRecordExternal))
}
